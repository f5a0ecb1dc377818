"""Tests of the `files` source: ILSVRC layout, TSV, ground truth, errors."""

import os

import conftest
import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized
from datasets_testcase import (
    BATCH_SIZE,
    IMAGE_SIZE,
    LABELS,
    NUM_CLASSES,
    NUM_EXAMPLES,
    NUMBERS,
    PREDICTED,
    DataTestCase,
    RealImagesTestCase,
    build,
    collect,
)

from tf_topk import datasets, imagenet, preprocessing, testing

# Each case: the images written to <dir>/images ("ilsvrc": the 10 test
# images as ILSVRC2012_val_0000000{1..10}.JPEG; "plain": 2 images named
# image_000{0,1}.jpg; "none"), the text of <dir>/labels.txt (None: no
# labels file), build arguments and the error. Messages and arguments are
# formatted with {dir}, {images} and {labels_file}.
FILES_ERRORS = (
    dict(
        testcase_name="label_out_of_range",
        images="ilsvrc",
        labels="0\n0\n0\n7\n" + "0\n" * 6,
        kwargs={},
        error=ValueError,
        message="Label '7' of '{images}/ILSVRC2012_val_00000004.JPEG' "
        "({labels_file}:4) is outside the class range: after the label "
        "offset it is 7, not in [0, 5). Check `label_offset` and "
        "`num_classes`.",
    ),
    dict(
        testcase_name="labels_file_too_short",
        images="ilsvrc",
        labels="0\n" * 9,
        kwargs={},
        error=ValueError,
        message="Argument `labels_file` has no label for image "
        "'{images}/ILSVRC2012_val_00000010.JPEG': line 10 of the file is "
        "missing (9 lines). Received: labels_file='{labels_file}'. Pass the "
        "ground truth of these images (line i labels "
        "ILSVRC2012_val_%08d.JPEG % i), or remove the unlabelled images.",
    ),
    dict(
        testcase_name="blank_line_of_an_image",
        images="ilsvrc",
        labels="0\n0\n\n" + "0\n" * 7,
        kwargs={},
        error=ValueError,
        message="Argument `labels_file` has no label for image "
        "'{images}/ILSVRC2012_val_00000003.JPEG': line 3 of the file is "
        "blank (10 lines). Received: labels_file='{labels_file}'. Pass the "
        "ground truth of these images (line i labels "
        "ILSVRC2012_val_%08d.JPEG % i), or remove the unlabelled images.",
    ),
    dict(
        testcase_name="bad_synset",
        images="ilsvrc",
        labels="0\nn99999999\n" + "0\n" * 8,
        kwargs={},
        error=ValueError,
        message="Label 'n99999999' of '{images}/ILSVRC2012_val_00000002.JPEG' "
        "({labels_file}:2) is not one of the 1000 ILSVRC2012 synsets.",
    ),
    dict(
        testcase_name="line_labels_need_ilsvrc_names",
        images="plain",
        labels="0\n1\n",
        kwargs={},
        error=ValueError,
        message="File 'image_0000.jpg' in '{images}' is not named like "
        "ILSVRC2012_val_%08d.JPEG, so a line-per-image labels file "
        "('{labels_file}') cannot label it. Use a TSV labels file of "
        "'<file>\\t<label>' lines.",
    ),
    dict(
        testcase_name="labels_file_required_for_other_names",
        images="plain",
        labels=None,
        kwargs={},
        error=ValueError,
        message="Argument `labels_file` is required for source='files' "
        "unless the images are ILSVRC2012 validation images named "
        "ILSVRC2012_val_00000001.JPEG, ... (none are in '{images}'). Pass "
        "labels_file= a TSV of '<file>\\t<label>' lines, one per image. "
        "Received: labels_file=None",
    ),
    dict(
        testcase_name="tsv_names_a_missing_file",
        images="none",
        labels="gone.jpg\t1\n",
        kwargs={},
        error=FileNotFoundError,
        message="File '{images}/gone.jpg' listed at {labels_file}:1 does not "
        "exist.",
    ),
    dict(
        testcase_name="tsv_bad_label",
        images="plain",
        labels="image_0000.jpg\tcat\n",
        kwargs={},
        error=ValueError,
        message="Label 'cat' of '{images}/image_0000.jpg' ({labels_file}:1) "
        "is neither a WordNet synset (n01440764) nor an integer class index.",
    ),
    dict(
        testcase_name="tsv_line_without_a_tab",
        images="plain",
        labels="image_0000.jpg\t0\nimage_0001.jpg 1\n",
        kwargs={},
        error=ValueError,
        message="Line {labels_file}:2 must be '<file>\\t<label>'. Received: "
        "'image_0001.jpg 1'",
    ),
    dict(
        testcase_name="missing_path",
        images="none",
        labels="0\n",
        kwargs={"path": "{dir}/nope"},
        error=FileNotFoundError,
        message="Argument `path` names a path that does not exist. "
        "Received: path='{dir}/nope'",
    ),
    dict(
        testcase_name="missing_labels_file",
        images="plain",
        labels=None,
        kwargs={"labels_file": "{dir}/nope"},
        error=FileNotFoundError,
        message="Argument `labels_file` names a path that does not exist. "
        "Received: labels_file='{dir}/nope'",
    ),
    dict(
        testcase_name="path_is_a_file",
        images="none",
        labels="0\n",
        kwargs={"path": "{labels_file}"},
        error=ValueError,
        message="Argument `path` must be a directory. "
        "Received: path='{labels_file}'",
    ),
    dict(
        testcase_name="empty",
        images="none",
        labels="0\n1\n",
        kwargs={},
        error=ValueError,
        message="The files source at '{images}' has no examples. Received: "
        "path='{images}'. Pass a `path` holding at least one example.",
    ),
)


class FilesTest(DataTestCase):
    @parameterized.product(
        synsets=(False, True),
        fmt=("jpeg", "png", "gray_jpeg", "cmyk_jpeg"),
    )
    def test_ilsvrc_layout_exact(self, synsets, fmt):
        _, labels_file = testing.write_ilsvrc_files(
            self.dir,
            PREDICTED,
            LABELS,
            num_classes=NUM_CLASSES,
            numbers=NUMBERS,
            synsets=synsets,
            fmt=fmt,
        )
        dataset, num_examples = build(
            "files",
            path=os.path.join(self.dir, "images"),
            labels_file=labels_file,
        )
        self.assertEqual(
            dataset.element_spec,
            (
                tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ),
        )
        self.assertExact(dataset, num_examples)

    def test_deterministic_order(self):
        _, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        dataset, _ = build(
            "files",
            path=os.path.join(self.dir, "images"),
            labels_file=labels_file,
            batch_size=3,
        )
        first = [(x.numpy(), y.numpy()) for x, y in dataset]
        second = [(x.numpy(), y.numpy()) for x, y in dataset]
        self.assertLen(first, 4)
        for (x1, y1), (x2, y2) in zip(first, second):
            self.assertAllEqual(x1, x2)
            self.assertAllEqual(y1, y2)
        self.assertAllEqual(np.concatenate([y for _, y in first]), LABELS)

    def test_tsv_keeps_its_order_and_reads_synsets(self):
        paths = testing.write_image_files(
            self.dir, PREDICTED, num_classes=NUM_CLASSES
        )
        synsets = imagenet.synsets()
        order = [9, 0, 8, 1, 7, 2, 6, 3, 5, 4]
        lines = [
            f"{os.path.basename(paths[i])}\t"
            f"{synsets[LABELS[i]] if i % 2 else LABELS[i]}\textra"
            for i in order
        ]
        labels_file = os.path.join(self.dir, "labels.tsv")
        with open(labels_file, "w") as f:
            f.write("\n".join(lines) + "\n")
        dataset, num_examples = build(
            "files", path=self.dir, labels_file=labels_file
        )
        self.assertExact(dataset, num_examples, labels=LABELS[order])

    def test_crlf_and_byte_order_mark(self):
        # A labels file saved by a Windows editor: BOM, CRLF line ends.
        _, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        with open(labels_file, "wb") as f:
            f.write(b"\xef\xbb\xbf")
            f.write("".join(f"{label}\r\n" for label in LABELS).encode())
        dataset, num_examples = build(
            "files",
            path=os.path.join(self.dir, "images"),
            labels_file=labels_file,
        )
        self.assertEqual(num_examples, NUM_EXAMPLES)
        self.assertAllEqual(np.concatenate([y for _, y in dataset]), LABELS)

    def test_label_offset(self):
        _, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS + 1, num_classes=NUM_CLASSES + 1
        )
        dataset, num_examples = build(
            "files",
            path=os.path.join(self.dir, "images"),
            labels_file=labels_file,
            label_offset=1,
        )
        _, labels, _ = collect(dataset)
        self.assertEqual(num_examples, NUM_EXAMPLES)
        self.assertAllEqual(labels, LABELS)

    def test_default_labels_file_is_the_ilsvrc_ground_truth(self):
        images = os.path.join(self.dir, "images")
        testing.write_ilsvrc_files(
            self.dir,
            PREDICTED,
            LABELS,
            num_classes=NUM_CLASSES,
            numbers=NUMBERS,
        )
        dataset, info = datasets.build(
            "files",
            path=images,
            batch_size=BATCH_SIZE,
            preprocess=preprocessing.Options(image_size=IMAGE_SIZE),
            with_info=True,
        )
        truth = imagenet.validation_labels()
        index = imagenet.synset_index()
        expected = [index[truth[n - 1]] for n in NUMBERS]
        self.assertEqual(info.num_examples, NUM_EXAMPLES)
        self.assertEqual(info.label_mapping, "ilsvrc_lines")
        self.assertAllEqual(
            np.concatenate([y.numpy() for _, y in dataset]), expected
        )

    @parameterized.named_parameters(*FILES_ERRORS)
    def test_error(self, images, labels, kwargs, error, message):
        folder = os.path.join(self.dir, "images")
        os.makedirs(folder, exist_ok=True)
        if images == "ilsvrc":
            testing.write_ilsvrc_files(
                self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
            )
        elif images == "plain":
            testing.write_image_files(
                folder, PREDICTED[:2], num_classes=NUM_CLASSES
            )
        labels_file = os.path.join(self.dir, "labels.txt")
        if labels is not None:
            with open(labels_file, "w") as f:
                f.write(labels)
        names = {"dir": self.dir, "images": folder, "labels_file": labels_file}
        kwargs = {
            "path": folder,
            "labels_file": labels_file if labels is not None else None,
            **{key: value.format(**names) for key, value in kwargs.items()},
        }
        with self.assertRaisesMessage(error, message.format(**names)):
            build("files", **kwargs)


def real_labels(folder):
    """{file: class index} from an assets labels.tsv."""
    with open(folder / "labels.tsv") as f:
        rows = [line.split("\t") for line in f.read().splitlines() if line]
    return {file: int(index) for file, index, _ in rows}


class RealFilesTest(RealImagesTestCase):
    @parameterized.named_parameters(
        ("pjpeg100", "val_pjpeg100", 100), ("acuity650", "val_acuity650", 650)
    )
    def test_ilsvrc_layout_gives_the_tsv_labels(self, name, count):
        folder = self.imagenet / name
        expected = real_labels(folder)
        dataset, num_examples = datasets.build(
            "files",
            path=str(folder),
            labels_file=str(self.imagenet / "validation_labels.txt"),
            batch_size=256,
            preprocess=preprocessing.Options(
                image_size=8, interpolation="area", antialias=False
            ),
        )
        self.assertEqual(num_examples, count)
        labels = np.concatenate([y.numpy() for _, y in dataset])
        self.assertAllEqual(labels, [expected[f] for f in sorted(expected)])


MOBILENET_REFERENCE = (
    # Counts from ../shared/assets/README.md, MobileNet alpha 0.75,
    # val_pjpeg100: (top-1, top-5) per preprocessing column.
    ("bilinear_antialias", {}, 65, 83),
    ("bilinear_no_antialias", {"antialias": False}, 66, 83),
    ("bicubic_antialias", {"interpolation": "bicubic"}, 64, 83),
    ("crop_then_resize", {"crop_mode": "crop_then_resize"}, 66, 83),
)


@pytest.mark.slow
class MobileNetReferenceTest(tf.test.TestCase, parameterized.TestCase):
    """The README's reference counts through this pipeline."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.weights = (
            conftest.ASSETS / "weights" / "mobilenet_0.75_224.weights.h5"
        )
        cls.model = None
        if cls.weights.is_file():
            keras.backend.clear_session()
            cls.model = keras.applications.MobileNet(
                alpha=0.75, weights=str(cls.weights)
            )

    def setUp(self):
        super().setUp()
        if self.model is None:
            self.skipTest(f"MobileNet weights not found at {self.weights}.")

    @parameterized.named_parameters(*MOBILENET_REFERENCE)
    def test_reference_counts(self, options, top1, top5):
        dataset, num_examples = datasets.build(
            "files",
            path=str(conftest.ASSETS / "imagenet" / "val_pjpeg100"),
            batch_size=50,
            preprocess=preprocessing.Options(**options),
        )
        predict = tf.function(
            lambda x: self.model(
                keras.applications.mobilenet.preprocess_input(x),
                training=False,
            )
        )
        counts = np.zeros(2, np.int64)
        for images, labels in dataset:
            predictions = tf.cast(predict(images), tf.float32)
            for i, k in enumerate((1, 5)):
                counts[i] += int(
                    tf.reduce_sum(
                        tf.cast(
                            tf.math.in_top_k(labels, predictions, k), tf.int32
                        )
                    )
                )
        self.assertEqual(num_examples, 100)
        self.assertEqual(tuple(counts), (top1, top5))
