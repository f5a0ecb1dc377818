"""Tests of the input pipelines: exact counts, order, labels and errors."""

import os
import re
import tarfile

import conftest
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from absl.testing import parameterized

from tf_topk import datasets, preprocessing, testing

NUM_CLASSES = 5
NUM_EXAMPLES = 10
BATCH_SIZE = 4
IMAGE_SIZE = 8
# Images paint class i % 5; the first 7 labels agree (the oracle gets 7/10).
PREDICTED = np.arange(NUM_EXAMPLES) % NUM_CLASSES
LABELS = testing.oracle_labels(PREDICTED, 7, NUM_CLASSES)
# ILSVRC numbers of the 10 images: gaps, and a labels file longer than that.
NUMBERS = [2, 3, 5, 8, 13, 21, 34, 55, 89, 144]


def collect(dataset):
    """(batch sizes, labels, oracle top-1 correct) of a built dataset."""
    model = testing.oracle_model(NUM_CLASSES)
    sizes, labels, correct = [], [], 0
    for images, batch_labels in dataset:
        sizes.append(int(images.shape[0]))
        labels.append(batch_labels.numpy())
        logits = model(images, training=False)
        correct += int(
            tf.reduce_sum(
                tf.cast(tf.math.in_top_k(batch_labels, logits, 1), tf.int32)
            )
        )
    return sizes, np.concatenate(labels), correct


def build(source, **kwargs):
    kwargs = {
        "batch_size": BATCH_SIZE,
        "num_classes": NUM_CLASSES,
        "image_size": IMAGE_SIZE,
        **kwargs,
    }
    return datasets.build(source, **kwargs)


class DataTestCase(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.dir = self.create_tempdir().full_path

    def assertExact(self, dataset, num_examples, labels=LABELS, correct=7):
        self.assertEqual(num_examples, len(labels))
        sizes, seen, num_correct = collect(dataset)
        expected_sizes = [BATCH_SIZE] * (len(labels) // BATCH_SIZE)
        if len(labels) % BATCH_SIZE:
            expected_sizes.append(len(labels) % BATCH_SIZE)
        self.assertEqual(sizes, expected_sizes)
        self.assertAllEqual(seen, labels)
        self.assertEqual(num_correct, correct)

    def assertRaisesMessage(self, error, message):
        return self.assertRaisesRegex(error, "^" + re.escape(message) + "$")


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
        synsets = datasets.imagenet_synsets()
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
        dataset, num_examples = datasets.build(
            "files", path=images, batch_size=BATCH_SIZE, image_size=IMAGE_SIZE
        )
        truth = datasets.imagenet_validation_labels()
        self.assertLen(truth, 50_000)
        synsets = datasets.imagenet_synsets()
        self.assertLen(synsets, 1000)
        self.assertEqual(synsets[0], "n01440764")
        expected = [synsets.index(truth[n - 1]) for n in NUMBERS]
        self.assertEqual(num_examples, NUM_EXAMPLES)
        self.assertAllEqual(
            np.concatenate([y.numpy() for _, y in dataset]), expected
        )

    def test_label_out_of_range(self):
        labels = LABELS.copy()
        labels[3] = 7
        _, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, labels, num_classes=NUM_CLASSES
        )
        image = os.path.join(self.dir, "images", "ILSVRC2012_val_00000004.JPEG")
        with self.assertRaisesMessage(
            ValueError,
            f"Label '7' of {image!r} ({labels_file}:4) is outside the class "
            "range: after the label offset it is 7, not in [0, 5). Check "
            "`label_offset` and `num_classes`.",
        ):
            build(
                "files",
                path=os.path.join(self.dir, "images"),
                labels_file=labels_file,
            )

    def test_labels_file_too_short(self):
        _, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        with open(labels_file, "w") as f:
            f.write("0\n" * 9)
        image = os.path.join(self.dir, "images", "ILSVRC2012_val_00000010.JPEG")
        with self.assertRaisesMessage(
            ValueError,
            f"Image {image!r} is number 10 but labels file {labels_file!r} "
            "has no label on line 10 (9 lines).",
        ):
            build(
                "files",
                path=os.path.join(self.dir, "images"),
                labels_file=labels_file,
            )

    def test_line_labels_need_ilsvrc_names(self):
        testing.write_image_files(
            self.dir, PREDICTED[:2], num_classes=NUM_CLASSES
        )
        labels_file = self.create_tempfile(content="0\n1\n").full_path
        with self.assertRaisesMessage(
            ValueError,
            f"File 'image_0000.jpg' in {self.dir!r} is not named like "
            "ILSVRC2012_val_%08d.JPEG, so a line-per-image labels file "
            f"({labels_file!r}) cannot label it. Use a TSV labels file of "
            "'<file>\\t<label>' lines.",
        ):
            build("files", path=self.dir, labels_file=labels_file)

    def test_labels_file_required_for_other_names(self):
        testing.write_image_files(
            self.dir, PREDICTED[:2], num_classes=NUM_CLASSES
        )
        with self.assertRaisesMessage(
            ValueError,
            "Argument `labels_file` is required for source='files' unless "
            "the folder holds ILSVRC2012 validation images "
            "(ILSVRC2012_val_00000001.JPEG ...). Received: labels_file=None "
            f"for path={self.dir!r}",
        ):
            build("files", path=self.dir)

    def test_tsv_names_a_missing_file(self):
        labels_file = os.path.join(self.dir, "labels.tsv")
        with open(labels_file, "w") as f:
            f.write("gone.jpg\t1\n")
        missing = os.path.join(self.dir, "gone.jpg")
        with self.assertRaisesMessage(
            FileNotFoundError,
            f"File {missing!r} listed at {labels_file}:1 does not exist.",
        ):
            build("files", path=self.dir, labels_file=labels_file)

    def test_tsv_bad_label(self):
        testing.write_image_files(
            self.dir, PREDICTED[:1], num_classes=NUM_CLASSES
        )
        labels_file = os.path.join(self.dir, "labels.tsv")
        with open(labels_file, "w") as f:
            f.write("image_0000.jpg\tcat\n")
        image = os.path.join(self.dir, "image_0000.jpg")
        with self.assertRaisesMessage(
            ValueError,
            f"Label 'cat' of {image!r} ({labels_file}:1) is neither a "
            "WordNet synset (n01440764) nor an integer class index.",
        ):
            build("files", path=self.dir, labels_file=labels_file)

    def test_missing_paths(self):
        missing = os.path.join(self.dir, "nope")
        with self.assertRaisesMessage(
            FileNotFoundError,
            "Argument `path` names a path that does not exist. "
            f"Received: path={missing!r}",
        ):
            build("files", path=missing, labels_file=missing)
        with self.assertRaisesMessage(
            FileNotFoundError,
            "Argument `labels_file` names a path that does not exist. "
            f"Received: labels_file={missing!r}",
        ):
            build("files", path=self.dir, labels_file=missing)

    def test_empty(self):
        labels_file = self.create_tempfile(content="0\n1\n").full_path
        with self.assertRaisesMessage(
            ValueError, f"The files source at {self.dir!r} has no examples."
        ):
            build("files", path=self.dir, labels_file=labels_file)


class FolderTest(DataTestCase):
    def test_sorted_names_exact(self):
        testing.write_class_folders(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        with self.assertLogs(logger="absl", level="INFO") as logs:
            dataset, info = datasets.build_with_info(
                "folder",
                path=self.dir,
                batch_size=BATCH_SIZE,
                num_classes=NUM_CLASSES,
                image_size=IMAGE_SIZE,
            )
        self.assertIn(
            "0=class_00, 1=class_01, 2=class_02, 3=class_03, 4=class_04",
            "\n".join(logs.output),
        )
        self.assertEqual(info.label_mapping, "sorted_names")
        self.assertEqual(
            info.class_names, tuple(f"class_{i:02d}" for i in range(5))
        )
        # The folder source reads class by class, files sorted.
        order = np.argsort(LABELS, kind="stable")
        self.assertExact(dataset, info.num_examples, labels=LABELS[order])

    def test_synset_folders_use_imagenet_indices(self):
        synsets = datasets.imagenet_synsets()
        indices = [999, 3, 500, 0, 42]
        testing.write_class_folders(
            self.dir,
            PREDICTED,
            [0, 1, 2, 3, 4, 0, 1, 2, 3, 4],
            num_classes=NUM_CLASSES,
            class_names=[synsets[i] for i in indices],
        )
        dataset, info = datasets.build_with_info(
            "folder", path=self.dir, batch_size=BATCH_SIZE, image_size=4
        )
        self.assertEqual(info.label_mapping, "imagenet_synsets")
        self.assertEqual(info.num_examples, NUM_EXAMPLES)
        labels = np.concatenate([y.numpy() for _, y in dataset])
        self.assertAllEqual(labels, sorted(indices * 2))

    def test_synset_folders_beyond_num_classes(self):
        synsets = datasets.imagenet_synsets()
        testing.write_class_folders(
            self.dir,
            [0],
            [0],
            num_classes=NUM_CLASSES,
            class_names=[synsets[7]],
        )
        folder = os.path.join(self.dir, synsets[7])
        with self.assertRaisesMessage(
            ValueError,
            f"Label {synsets[7]!r} of folder {folder!r} is outside the class "
            "range: after the label offset it is 7, not in [0, 5). Check "
            "`label_offset` and `num_classes`.",
        ):
            build("folder", path=self.dir)

    def test_no_class_folders(self):
        with self.assertRaisesMessage(
            ValueError,
            f"Folder {self.dir!r} has no class subfolders. The `folder` "
            "source needs one subfolder of images per class.",
        ):
            build("folder", path=self.dir)

    def test_class_folders_without_images(self):
        os.makedirs(os.path.join(self.dir, "cats"))
        with self.assertRaisesMessage(
            ValueError,
            f"Folder {self.dir!r} has class subfolders but no images "
            "(extensions ['.bmp', '.gif', '.jpeg', '.jpg', '.png']).",
        ):
            build("folder", path=self.dir)

    def test_label_offset_rejected(self):
        with self.assertRaisesMessage(
            ValueError,
            "Argument `label_offset` does not apply to source='folder' "
            "(labels come from folder names). Received: label_offset=1",
        ):
            build("folder", path=self.dir, label_offset=1)


class TfrecordTest(DataTestCase):
    @parameterized.named_parameters(
        ("glob", True, 3), ("folder", False, 3), ("one_shard", True, 1)
    )
    def test_one_based_by_default(self, glob, num_shards):
        testing.write_tfrecords(
            self.dir,
            PREDICTED,
            LABELS,
            num_classes=NUM_CLASSES,
            num_shards=num_shards,
        )
        path = os.path.join(self.dir, "validation-*") if glob else self.dir
        dataset, num_examples = build("tfrecord", path=path)
        self.assertExact(dataset, num_examples)

    def test_keys_and_offset(self):
        testing.write_tfrecords(
            self.dir,
            PREDICTED,
            LABELS,
            num_classes=NUM_CLASSES,
            label_offset=0,
            image_key="jpeg",
            label_key="class",
            fmt="png",
        )
        dataset, num_examples = build(
            "tfrecord",
            path=self.dir,
            label_offset=0,
            image_key="jpeg",
            label_key="class",
        )
        self.assertExact(dataset, num_examples)

    def test_zero_based_data_with_default_offset(self):
        # The classic off-by-one: 0-based records read as 1-based.
        testing.write_tfrecords(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES, label_offset=0
        )
        first = np.flatnonzero(LABELS == 0)[0]
        shard = os.path.join(self.dir, "validation-00000-of-00003")
        with self.assertRaisesMessage(
            ValueError,
            f"Label 0 of {shard!r} record {first} is outside the class range: "
            "after the label offset it is -1, not in [0, 5). Check "
            "`label_offset` and `num_classes`.",
        ):
            build("tfrecord", path=self.dir)

    def test_no_shards(self):
        pattern = os.path.join(self.dir, "train-*")
        with self.assertRaisesMessage(
            FileNotFoundError,
            "Argument `path` matches no TFRecord files. "
            f"Received: path={pattern!r}",
        ):
            build("tfrecord", path=pattern)


class TinyImages(tfds.core.GeneratorBasedBuilder):
    """10 oracle images with one label and a multi-label ("real") set."""

    VERSION = tfds.core.Version("1.0.0")
    # Multi-hot rows: example 3 has no label, example 5 has two.
    REAL = [[c] for c in LABELS]
    REAL[3] = []
    REAL[5] = [0, 2]

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(num_classes=5),
                    "real_label": tfds.features.Sequence(
                        tfds.features.ClassLabel(num_classes=5)
                    ),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"validation": self._generate_examples()}

    def _generate_examples(self):
        for i, c in enumerate(PREDICTED):
            yield (
                i,
                {
                    "image": testing.constant_image(
                        int(c), NUM_CLASSES, height=16 + i, width=12
                    ),
                    "label": int(LABELS[i]),
                    "real_label": self.REAL[i],
                    "file_name": f"image_{i}.png",
                },
            )


SUBSET_SYNSETS = (999, 3, 500)


class TinySynsets(tfds.core.GeneratorBasedBuilder):
    """6 images labelled by 3 synsets, like imagenette or ImageNet-A/R."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        synsets = datasets.imagenet_synsets()
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(
                        names=[synsets[i] for i in SUBSET_SYNSETS]
                    ),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"test": self._generate_examples()}

    def _generate_examples(self):
        for i in range(6):
            image = testing.constant_image(0, NUM_CLASSES, height=9, width=9)
            yield i, {"image": image, "label": i % 3}


class TfdsTest(DataTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data_dir = cls.create_tempdir_class()
        tfds.builder(
            "tiny_images", data_dir=cls.data_dir
        ).download_and_prepare()

    @classmethod
    def create_tempdir_class(cls):
        import tempfile

        cls._tmp = tempfile.TemporaryDirectory()
        return cls._tmp.name

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    def tfds_order(self):
        """file_name order of tfds' own deterministic read."""
        builder = tfds.builder("tiny_images", data_dir=self.data_dir)
        dataset = builder.as_dataset(
            split="validation",
            shuffle_files=False,
            read_config=tfds.ReadConfig(interleave_cycle_length=1),
        )
        return [
            int(example["file_name"].decode()[6:-4])
            for example in dataset.as_numpy_iterator()
        ]

    def test_single_label_exact(self):
        dataset, num_examples = build(
            "tfds", name="tiny_images", data_dir=self.data_dir
        )
        order = self.tfds_order()
        self.assertCountEqual(order, range(NUM_EXAMPLES))
        self.assertExact(dataset, num_examples, labels=LABELS[order])

    def test_shards_partition_the_split(self):
        order = self.tfds_order()
        got = np.zeros(NUM_EXAMPLES, LABELS.dtype)
        for index in range(3):
            dataset, count = build(
                "tfds",
                name="tiny_images",
                data_dir=self.data_dir,
                num_shards=3,
                shard_index=index,
            )
            self.assertEqual(count, len(range(index, NUM_EXAMPLES, 3)))
            _, labels, _ = collect(dataset)
            got[index::3] = labels
        self.assertAllEqual(got, LABELS[order])

    def test_multi_label_rows(self):
        dataset, num_examples = build(
            "tfds",
            name="tiny_images",
            data_dir=self.data_dir,
            label_key="real_label",
        )
        self.assertEqual(num_examples, NUM_EXAMPLES)
        self.assertEqual(
            dataset.element_spec[1],
            tf.TensorSpec([None, NUM_CLASSES], tf.float32),
        )
        rows = np.concatenate([y.numpy() for _, y in dataset])
        expected = np.zeros([NUM_EXAMPLES, NUM_CLASSES], np.float32)
        for i, classes in enumerate(TinyImages.REAL):
            expected[i, classes] = 1.0
        self.assertAllEqual(rows, expected[self.tfds_order()])
        self.assertEqual(rows.sum(axis=1).tolist().count(0.0), 1)

    def test_synset_classes_map_to_imagenet_indices(self):
        data_dir = self.create_tempdir().full_path
        builder = tfds.builder("tiny_synsets", data_dir=data_dir)
        builder.download_and_prepare()
        dataset, info = datasets.build_with_info(
            "tfds", name="tiny_synsets", split="test", data_dir=data_dir
        )
        self.assertEqual(info.num_examples, 6)
        self.assertEqual(info.label_mapping, "imagenet_synsets")
        raw = [
            int(example["label"])
            for example in builder.as_dataset(
                split="test",
                shuffle_files=False,
                read_config=tfds.ReadConfig(interleave_cycle_length=1),
            ).as_numpy_iterator()
        ]
        labels = np.concatenate([y.numpy() for _, y in dataset])
        self.assertAllEqual(labels, [SUBSET_SYNSETS[i] for i in raw])
        # With their own 3 classes the labels stay tfds' indices.
        dataset, _ = build(
            "tfds", name="tiny_synsets", split="test", data_dir=data_dir
        )
        self.assertAllEqual(
            np.concatenate([y.numpy() for _, y in dataset]), raw
        )

    def test_split_slice(self):
        dataset, num_examples = build(
            "tfds",
            name="tiny_images",
            split="validation[:3]",
            data_dir=self.data_dir,
        )
        self.assertEqual(num_examples, 3)
        self.assertLen(np.concatenate([y for _, y in dataset]), 3)

    def test_not_prepared(self):
        with self.assertRaisesRegex(
            FileNotFoundError,
            r"^tfds dataset 'tiny_images' is not prepared in '.*'\. Prepare it "
            r"once with `tfds\.builder\('tiny_images', data_dir=\.\.\.\)\."
            r"download_and_prepare\(download_config=tfds\.download\."
            r"DownloadConfig\(manual_dir=\.\.\.\)\)`",
        ):
            build("tfds", name="tiny_images", data_dir=self.dir)

    def test_bad_split_and_key(self):
        with self.assertRaisesMessage(
            ValueError,
            "Argument `split` must be a split of 'tiny_images': "
            "['validation']. Received: split='test'",
        ):
            build(
                "tfds", name="tiny_images", split="test", data_dir=self.data_dir
            )
        with self.assertRaisesMessage(
            ValueError,
            "Argument `label_key` must be a feature of 'tiny_images': "
            "['file_name', 'image', 'label', 'real_label']. "
            "Received: label_key='labels'",
        ):
            build(
                "tfds",
                name="tiny_images",
                data_dir=self.data_dir,
                label_key="labels",
            )


class CorruptTest(DataTestCase):
    def write(self, corrupt):
        paths, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        for i in corrupt:
            with open(paths[i], "r+b") as f:
                f.truncate(20 if i % 2 else 0)
        return paths, labels_file

    @parameterized.named_parameters(("middle", 5), ("last", 9), ("first", 0))
    def test_error_names_the_file(self, index):
        paths, labels_file = self.write([index])
        dataset, num_examples = build(
            "files",
            path=os.path.join(self.dir, "images"),
            labels_file=labels_file,
        )
        self.assertEqual(num_examples, NUM_EXAMPLES)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            re.escape(
                f"Could not read or decode image {paths[index]} (corrupt, "
                "truncated or not an image). Fix or remove it, or pass "
                "skip_corrupt=True"
            ),
        ):
            for _ in dataset:
                pass

    def test_error_names_the_record(self):
        shards = testing.write_tfrecords(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        # Rewrite shard 1 with its second record's image replaced by junk.
        records = list(tf.data.TFRecordDataset(shards[1]).as_numpy_iterator())
        example = tf.train.Example.FromString(records[1])
        example.features.feature["image/encoded"].bytes_list.value[0] = b"x"
        records[1] = example.SerializeToString()
        with tf.io.TFRecordWriter(shards[1]) as writer:
            for record in records:
                writer.write(record)
        dataset, _ = build("tfrecord", path=self.dir)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            re.escape(f"Could not read or decode image {shards[1]} record 1 "),
        ):
            for _ in dataset:
                pass

    def test_skip_corrupt_lists_and_counts(self):
        paths, labels_file = self.write([2, 9])
        with self.assertLogs(logger="absl", level="WARNING") as logs:
            dataset, info = datasets.build_with_info(
                "files",
                path=os.path.join(self.dir, "images"),
                labels_file=labels_file,
                batch_size=BATCH_SIZE,
                num_classes=NUM_CLASSES,
                image_size=IMAGE_SIZE,
                skip_corrupt=True,
            )
        self.assertEqual(info.skipped, (paths[2], paths[9]))
        self.assertEqual(info.num_skipped, 2)
        output = "\n".join(logs.output)
        self.assertIn(f"Skipped corrupt image {paths[2]}", output)
        self.assertIn("Skipped 2 corrupt images of 10; evaluating 8.", output)
        keep = [i for i in range(NUM_EXAMPLES) if i not in (2, 9)]
        # Example 2 was a correct one: 6 of the 8 left are right.
        self.assertExact(
            dataset, info.num_examples, labels=LABELS[keep], correct=6
        )
        _, num_examples = build(
            "files",
            path=os.path.join(self.dir, "images"),
            labels_file=labels_file,
            skip_corrupt=True,
        )
        self.assertEqual(num_examples, 8)

    def test_all_corrupt(self):
        _, labels_file = self.write(range(NUM_EXAMPLES))
        images = os.path.join(self.dir, "images")
        with self.assertRaisesMessage(
            ValueError,
            f"Every image of the files source at {images!r} is corrupt.",
        ):
            build(
                "files",
                path=images,
                labels_file=labels_file,
                skip_corrupt=True,
            )


class ShardTest(DataTestCase):
    """num_shards / shard_index: every example in exactly one shard."""

    def write(self, source):
        if source == "files":
            _, labels_file = testing.write_ilsvrc_files(
                self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
            )
            return {
                "path": os.path.join(self.dir, "images"),
                "labels_file": labels_file,
            }
        if source == "folder":
            testing.write_class_folders(
                self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
            )
            return {"path": self.dir}
        testing.write_tfrecords(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES, num_shards=2
        )
        return {"path": self.dir}

    @parameterized.product(
        source=("files", "folder", "tfrecord"), num_shards=(1, 3, 12)
    )
    def test_shards_partition_the_source(self, source, num_shards):
        kwargs = self.write(source)
        whole, num_examples = build(source, **kwargs)
        _, want, _ = collect(whole)
        got = np.zeros_like(want)
        for index in range(num_shards):
            dataset, count = build(
                source, num_shards=num_shards, shard_index=index, **kwargs
            )
            # Examples index, index + num_shards, ...; 12 shards of 10
            # examples leave shards 10 and 11 empty.
            self.assertEqual(count, len(range(index, 10, num_shards)))
            sizes, labels, _ = collect(dataset) if count else ([], [], 0)
            self.assertEqual(sum(sizes), count)
            got[index::num_shards] = labels
            _, info = datasets.build_with_info(
                source,
                num_shards=num_shards,
                shard_index=index,
                batch_size=BATCH_SIZE,
                num_classes=NUM_CLASSES,
                image_size=IMAGE_SIZE,
                **kwargs,
            )
            self.assertEqual(info.num_examples, num_examples)
        self.assertAllEqual(got, want)

    def test_empty_shard_has_the_batch_spec(self):
        kwargs = self.write("files")
        whole, _ = build("files", **kwargs)
        empty, count = build("files", num_shards=12, shard_index=11, **kwargs)
        self.assertEqual(count, 0)
        self.assertEqual(empty.element_spec, whole.element_spec)
        self.assertEmpty(list(empty))

    def test_skip_corrupt_then_shard(self):
        paths, labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        with open(paths[4], "wb"):
            pass  # empty: not an image
        kept = np.delete(LABELS, 4)
        seen = np.zeros_like(kept)
        for index in range(2):
            dataset, info = datasets.build_with_info(
                "files",
                path=os.path.join(self.dir, "images"),
                labels_file=labels_file,
                skip_corrupt=True,
                num_shards=2,
                shard_index=index,
                batch_size=BATCH_SIZE,
                num_classes=NUM_CLASSES,
                image_size=IMAGE_SIZE,
            )
            self.assertEqual(info.num_examples, 9)
            self.assertEqual(info.skipped, (paths[4],))
            _, labels, _ = collect(dataset)
            seen[index::2] = labels
        self.assertAllEqual(seen, kept)

    @parameterized.named_parameters(
        ("zero_shards", 0, 0, "Argument `num_shards` must be a positive"),
        ("index_too_big", 2, 2, "Argument `shard_index` must be an integer"),
        ("negative_index", 2, -1, "Argument `shard_index` must be an integer"),
    )
    def test_bad_shard_arguments(self, num_shards, shard_index, message):
        kwargs = self.write("files")
        with self.assertRaisesRegex(ValueError, "^" + re.escape(message)):
            build(
                "files",
                num_shards=num_shards,
                shard_index=shard_index,
                **kwargs,
            )


class PreprocessTest(DataTestCase):
    def setUp(self):
        super().setUp()
        _, self.labels_file = testing.write_ilsvrc_files(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        self.images = os.path.join(self.dir, "images")

    def test_ten_crops(self):
        dataset, num_examples = build(
            "files",
            path=self.images,
            labels_file=self.labels_file,
            num_crops=10,
        )
        self.assertEqual(
            dataset.element_spec[0].shape.as_list(),
            [None, 10, IMAGE_SIZE, IMAGE_SIZE, 3],
        )
        model = testing.oracle_model(NUM_CLASSES)
        correct = 0
        for images, labels in dataset:
            # Average the crops' predictions per image, as the engine does.
            logits = tf.reduce_mean(
                tf.reshape(
                    model(tf.reshape(images, [-1, IMAGE_SIZE, IMAGE_SIZE, 3])),
                    [-1, 10, NUM_CLASSES],
                ),
                axis=1,
            )
            correct += int(
                tf.reduce_sum(
                    tf.cast(tf.math.in_top_k(labels, logits, 1), "int32")
                )
            )
        self.assertEqual(num_examples, NUM_EXAMPLES)
        self.assertEqual(correct, 7)

    def test_sequence_of_options_gives_a_tuple(self):
        options = (
            preprocessing.Options(image_size=8),
            preprocessing.Options(
                image_size=6, crop_mode="crop_then_resize", num_crops=10
            ),
        )
        dataset, num_examples = build(
            "files",
            path=self.images,
            labels_file=self.labels_file,
            preprocess=options,
        )
        self.assertEqual(num_examples, NUM_EXAMPLES)
        images_spec, _ = dataset.element_spec
        self.assertEqual(
            [s.shape.as_list() for s in images_spec],
            [[None, 8, 8, 3], [None, 10, 6, 6, 3]],
        )
        (small, crops), labels = next(iter(dataset))
        self.assertAllEqual(labels, LABELS[:BATCH_SIZE])
        painted = [testing.class_intensity(c, 5) for c in PREDICTED[:4]]
        self.assertAllClose(
            tf.reduce_mean(small, axis=[1, 2, 3]), painted, atol=1.0
        )
        self.assertAllClose(
            tf.reduce_mean(crops, axis=[1, 2, 3, 4]), painted, atol=1.0
        )

    def test_one_options_overrides_flat_arguments(self):
        dataset, _ = build(
            "files",
            path=self.images,
            labels_file=self.labels_file,
            preprocess=preprocessing.Options(image_size=5),
        )
        self.assertEqual(dataset.element_spec[0].shape.as_list()[1:], [5, 5, 3])

    @parameterized.named_parameters(
        ("dict", {"image_size": 8}), ("empty", ()), ("string", "bilinear")
    )
    def test_bad_preprocess(self, preprocess):
        with self.assertRaisesMessage(
            TypeError,
            "Argument `preprocess` must be a `preprocessing.Options` or a "
            "non-empty sequence of them. "
            f"Received: preprocess={preprocess!r}",
        ):
            build(
                "files",
                path=self.images,
                labels_file=self.labels_file,
                preprocess=preprocess,
            )

    def test_bad_flat_option(self):
        with self.assertRaisesMessage(
            ValueError,
            "Argument `num_crops` must be one of [1, 10]. "
            "Received: num_crops=2",
        ):
            build(
                "files",
                path=self.images,
                labels_file=self.labels_file,
                num_crops=2,
            )


class ArgumentsTest(DataTestCase):
    @parameterized.named_parameters(
        (
            "source",
            {"source": "tfrecords"},
            ValueError,
            "Argument `source` must be one of ['files', 'folder', 'tfds', "
            "'tfrecord']. Received: source='tfrecords'",
        ),
        (
            "batch_size",
            {"batch_size": 0},
            ValueError,
            "Argument `batch_size` must be a positive integer. "
            "Received: batch_size=0",
        ),
        (
            "num_classes",
            {"num_classes": 1.5},
            ValueError,
            "Argument `num_classes` must be a positive integer. "
            "Received: num_classes=1.5",
        ),
        (
            "label_offset",
            {"label_offset": "1"},
            TypeError,
            "Argument `label_offset` must be an integer or None. "
            "Received: label_offset='1'",
        ),
        (
            "skip_corrupt",
            {"skip_corrupt": "yes"},
            TypeError,
            "Argument `skip_corrupt` must be a bool. "
            "Received: skip_corrupt='yes'",
        ),
        (
            "path",
            {"source": "folder"},
            ValueError,
            "Argument `path` is required for this source. Received: path=None",
        ),
    )
    def test_invalid(self, kwargs, error, message):
        kwargs = {"source": "files", "path": self.dir, **kwargs}
        if kwargs["source"] == "folder":
            del kwargs["path"]
        with self.assertRaisesMessage(error, message):
            datasets.build(**kwargs)


def real_labels(folder):
    """{file: class index} from an assets labels.tsv."""
    with open(folder / "labels.tsv") as f:
        rows = [line.split("\t") for line in f.read().splitlines() if line]
    return {file: int(index) for file, index, _ in rows}


class RealDataTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.imagenet = conftest.ASSETS / "imagenet"
        if not (self.imagenet / "synsets.txt").is_file():
            self.skipTest(f"Real ImageNet assets not found at {self.imagenet}.")

    def test_packaged_synsets_match_the_assets(self):
        synsets = (self.imagenet / "synsets.txt").read_text().split()
        self.assertEqual(list(datasets.imagenet_synsets()), synsets)
        truth = (self.imagenet / "validation_labels.txt").read_text().split()
        self.assertEqual(list(datasets.imagenet_validation_labels()), truth)

    @parameterized.named_parameters(
        ("pjpeg100", "val_pjpeg100", 100), ("acuity650", "val_acuity650", 650)
    )
    def test_files_ilsvrc_layout_gives_the_tsv_labels(self, name, count):
        folder = self.imagenet / name
        expected = real_labels(folder)
        dataset, num_examples = datasets.build(
            "files",
            path=str(folder),
            labels_file=str(self.imagenet / "validation_labels.txt"),
            batch_size=256,
            image_size=8,
            interpolation="area",
            antialias=False,
        )
        self.assertEqual(num_examples, count)
        labels = np.concatenate([y.numpy() for _, y in dataset])
        self.assertAllEqual(labels, [expected[f] for f in sorted(expected)])

    def test_folder_maps_all_1000_synsets(self):
        source = self.imagenet / "sample_1000"
        expected = real_labels(source)
        self.assertLen(expected, 1000)
        root = self.create_tempdir().full_path
        # Folders in a shuffled creation order: the mapping must not care.
        rng = np.random.default_rng(0)
        files = sorted(expected)
        for i in rng.permutation(len(files)):
            synset = files[i].split("_")[0]
            os.makedirs(os.path.join(root, synset), exist_ok=True)
            os.symlink(source / files[i], os.path.join(root, synset, files[i]))
        dataset, info = datasets.build_with_info(
            "folder", path=root, batch_size=500, image_size=4
        )
        self.assertEqual(info.num_examples, 1000)
        self.assertEqual(info.label_mapping, "imagenet_synsets")
        labels = np.concatenate([y.numpy() for _, y in dataset])
        self.assertAllEqual(labels, [expected[f] for f in files])
        self.assertAllEqual(labels, np.arange(1000))

    def test_tfds_imagenet2012_builder_matches_files(self):
        # tfds' real imagenet2012 builder, offline, from a manual dir that
        # holds only the validation tar of the 100 val_pjpeg100 images.
        folder = self.imagenet / "val_pjpeg100"
        files = sorted(real_labels(folder))
        manual = self.create_tempdir("manual").full_path
        data_dir = self.create_tempdir("tfds").full_path
        with tarfile.open(
            os.path.join(manual, "ILSVRC2012_img_val.tar"), "w"
        ) as tar:
            for file in files:
                tar.add(folder / file, arcname=file)
        builder = tfds.builder("imagenet2012", data_dir=data_dir)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual)
        )
        options = preprocessing.Options(image_size=32)
        from_tfds, num_tfds = datasets.build(
            "tfds", data_dir=data_dir, batch_size=64, preprocess=options
        )
        from_files, num_files = datasets.build(
            "files", path=str(folder), batch_size=64, preprocess=options
        )
        self.assertEqual(num_tfds, 100)
        self.assertEqual(num_files, 100)
        # tfds reads in its own (shuffled, deterministic) order: match the
        # examples by file name; same pixels and labels = same accuracy.
        names = [
            example["file_name"].decode()
            for example in builder.as_dataset(
                split="validation",
                shuffle_files=False,
                read_config=tfds.ReadConfig(interleave_cycle_length=1),
                decoders={"image": tfds.decode.SkipDecoding()},
            ).as_numpy_iterator()
        ]
        position = [files.index(name) for name in names]
        tfds_images = np.concatenate([x for x, _ in from_tfds])
        tfds_labels = np.concatenate([y for _, y in from_tfds])
        file_images = np.concatenate([x for x, _ in from_files])
        file_labels = np.concatenate([y for _, y in from_files])
        self.assertAllEqual(tfds_labels, file_labels[position])
        self.assertAllEqual(tfds_images, file_images[position])
        # tfds' own labels are by position in the sorted tar (lines 1..100
        # of the ground truth): wrong for a subset, hence the relabelling.
        raw = [
            int(example["label"])
            for example in builder.as_dataset(
                split="validation",
                shuffle_files=False,
                read_config=tfds.ReadConfig(interleave_cycle_length=1),
                decoders={"image": tfds.decode.SkipDecoding()},
            ).as_numpy_iterator()
        ]
        self.assertNotAllEqual(raw, tfds_labels)


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
            **options,
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
