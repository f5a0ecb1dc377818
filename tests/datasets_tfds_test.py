"""Tests of the `tfds` source and `prepare_tfds`, on tiny generated builders
and on tfds' real imagenet2012 builder (prepared offline from real images)."""

import os
import re
import socket
import tarfile
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl.testing import parameterized
from datasets_testcase import (
    LABELS,
    NUM_CLASSES,
    NUM_EXAMPLES,
    PREDICTED,
    DataTestCase,
    RealImagesTestCase,
    build,
    collect,
)

from tf_topk import datasets, imagenet, preprocessing, testing


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
        synsets = imagenet.synsets()
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


class TinyUnavailable(tfds.core.GeneratorBasedBuilder):
    """A dataset whose preparation fails, as a download without network."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"label": tfds.features.ClassLabel(num_classes=2)}
            ),
        )

    def _split_generators(self, dl_manager):
        raise ConnectionError("no network")

    def _generate_examples(self):
        yield from ()


class TfdsTest(DataTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._tmp = tempfile.TemporaryDirectory()
        cls.data_dir = cls._tmp.name
        tfds.builder(
            "tiny_images", data_dir=cls.data_dir
        ).download_and_prepare()

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()
        super().tearDownClass()

    @parameterized.parameters("validation", "validation[3:8]")
    def test_example_ids_are_tfds_own_ids(self, split):
        builder = tfds.builder("tiny_images", data_dir=self.data_dir)
        own = [
            example["tfds_id"].decode()
            for example in builder.as_dataset(
                split=split,
                shuffle_files=False,
                read_config=tfds.ReadConfig(
                    interleave_cycle_length=1, add_tfds_id=True
                ),
            ).as_numpy_iterator()
        ]
        dataset, _ = build(
            "tfds",
            name="tiny_images",
            split=split,
            data_dir=self.data_dir,
            with_ids=True,
        )
        ids = [i.decode() for _, _, batch in dataset for i in batch.numpy()]
        self.assertEqual(ids, own)
        self.assertRegex(ids[0], r"^tiny_images-validation\.tfrecord-.*__\d+$")

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
        dataset, info = build(
            "tfds",
            name="tiny_images",
            data_dir=self.data_dir,
            label_key="real_label",
            with_info=True,
        )
        self.assertEqual(info.num_examples, NUM_EXAMPLES)
        self.assertTrue(info.multi_label)
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
        dataset, info = build(
            "tfds",
            name="tiny_synsets",
            split="test",
            data_dir=data_dir,
            num_classes=1000,
            with_info=True,
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

    @parameterized.named_parameters(
        (
            "split",
            {"split": "test"},
            "Argument `split` must be a split of 'tiny_images': "
            "['validation']. Received: split='test'",
        ),
        (
            "label_key",
            {"label_key": "labels"},
            "Argument `label_key` must be a feature of 'tiny_images': "
            "['file_name', 'image', 'label', 'real_label']. "
            "Received: label_key='labels'",
        ),
        (
            "image_key",
            {"image_key": "jpeg"},
            "Argument `image_key` must be a feature of 'tiny_images': "
            "['file_name', 'image', 'label', 'real_label']. "
            "Received: image_key='jpeg'",
        ),
        (
            "label_key_not_a_class_label",
            {"label_key": "file_name"},
            "Feature 'file_name' of 'tiny_images' must be a ClassLabel or a "
            "Sequence of ClassLabel. Received: Text(shape=(), dtype=string)",
        ),
    )
    def test_bad_argument(self, kwargs, message):
        with self.assertRaisesMessage(ValueError, message):
            build("tfds", name="tiny_images", data_dir=self.data_dir, **kwargs)


class PrepareTfdsTest(tf.test.TestCase):
    def test_prepares_once(self):
        data_dir = self.create_tempdir().full_path
        datasets.prepare_tfds("tiny_synsets", data_dir=data_dir, download=False)
        self.assertFalse(
            tfds.builder("tiny_synsets", data_dir=data_dir).is_prepared()
        )
        datasets.prepare_tfds("tiny_synsets", data_dir=data_dir)
        self.assertTrue(
            tfds.builder("tiny_synsets", data_dir=data_dir).is_prepared()
        )
        datasets.prepare_tfds("tiny_synsets", data_dir=data_dir)  # No-op.

    def test_unknown_name(self):
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `name` must name a tfds dataset\. Received: "
            r"name='no_such_dataset' \(",
        ):
            datasets.prepare_tfds("no_such_dataset")

    def test_manual_dir_must_be_a_folder(self):
        data_dir = self.create_tempdir().full_path
        missing = os.path.join(data_dir, "manual")
        with self.assertRaisesRegex(
            FileNotFoundError,
            "^"
            + re.escape(
                "Argument `manual_dir` must be a folder. "
                f"Received: manual_dir={missing!r}"
            )
            + "$",
        ):
            datasets.prepare_tfds(
                "tiny_synsets", data_dir=data_dir, manual_dir=missing
            )

    def test_failed_preparation(self):
        data_dir = self.create_tempdir().full_path
        with self.assertRaisesRegex(
            datasets.DataUnavailableError,
            r"^Could not download and prepare tfds dataset 'tiny_unavailable' "
            r"into '.*': no network\nWithout internet, prepare it on a "
            r"machine with internet and pass its `data_dir`",
        ):
            datasets.prepare_tfds("tiny_unavailable", data_dir=data_dir)


class RealTfdsTest(RealImagesTestCase):
    def test_imagenet2012_builder_matches_files(self):
        # tfds' real imagenet2012 builder, offline, from a manual dir that
        # holds only the validation tar of the 100 val_pjpeg100 images.
        folder = self.imagenet / "val_pjpeg100"
        files = sorted(
            row.file for row in imagenet.read_tsv_labels(folder / "labels.tsv")
        )
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
        examples = list(
            builder.as_dataset(
                split="validation",
                shuffle_files=False,
                read_config=tfds.ReadConfig(interleave_cycle_length=1),
                decoders={"image": tfds.decode.SkipDecoding()},
            ).as_numpy_iterator()
        )
        position = [files.index(e["file_name"].decode()) for e in examples]
        tfds_images = np.concatenate([x for x, _ in from_tfds])
        tfds_labels = np.concatenate([y for _, y in from_tfds])
        file_images = np.concatenate([x for x, _ in from_files])
        file_labels = np.concatenate([y for _, y in from_files])
        self.assertAllEqual(tfds_labels, file_labels[position])
        self.assertAllEqual(tfds_images, file_images[position])
        # tfds' own labels are by position in the sorted tar (lines 1..100
        # of the ground truth): wrong for a subset, hence the relabelling.
        raw = [int(example["label"]) for example in examples]
        self.assertNotAllEqual(raw, tfds_labels)

    def test_offline_fails_fast_before_any_download(self):
        # ImageNetV2 downloads itself from huggingface.co; with no host
        # answering, prepare must stop at once instead of tfds' minutes of
        # retries, and name the offline routes.
        data_dir = self.create_tempdir().full_path
        builder_class = type(tfds.builder("imagenet_v2", data_dir=data_dir))
        with (
            mock.patch.object(
                socket, "create_connection", side_effect=OSError("offline")
            ) as connect,
            mock.patch.object(
                builder_class,
                "download_and_prepare",
                side_effect=AssertionError("must not download"),
            ),
        ):
            with self.assertRaisesRegex(
                datasets.DataUnavailableError,
                r"^tfds dataset 'imagenet_v2' is not prepared in '.*' and "
                r"cannot be downloaded: no download host answers within 10 s "
                r"\(huggingface\.co: offline\)\. Offline, evaluate local data "
                r"instead .*--config\.data\.source=files\|folder\|tfrecord.*"
                r"--config\.data\.data_dir.*--config\.data\.manual_dir",
            ):
                datasets.prepare_tfds("imagenet_v2", data_dir=data_dir)
        connect.assert_called_once_with(("huggingface.co", 443), timeout=10.0)

    def test_a_manual_dir_needs_no_network(self):
        data_dir = self.create_tempdir().full_path
        manual_dir = self.create_tempdir().full_path
        with mock.patch.object(
            socket, "create_connection", side_effect=AssertionError("network")
        ):
            datasets.prepare_tfds(
                "tiny_synsets", data_dir=data_dir, manual_dir=manual_dir
            )
        self.assertTrue(
            tfds.builder("tiny_synsets", data_dir=data_dir).is_prepared()
        )
