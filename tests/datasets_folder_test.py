"""Tests of the `folder` source: class folders, synset mapping, errors."""

import os

import numpy as np
from absl.testing import parameterized
from datasets_testcase import (
    LABELS,
    NUM_CLASSES,
    NUM_EXAMPLES,
    PREDICTED,
    DataTestCase,
    RealImagesTestCase,
    build,
)

from tf_topk import imagenet, preprocessing, testing


class FolderTest(DataTestCase):
    def test_sorted_names_exact(self):
        testing.write_class_folders(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        with self.assertLogs(logger="absl", level="INFO") as logs:
            dataset, info = build("folder", path=self.dir, with_info=True)
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
        synsets = imagenet.synsets()
        indices = [999, 3, 500, 0, 42]
        testing.write_class_folders(
            self.dir,
            PREDICTED,
            [0, 1, 2, 3, 4, 0, 1, 2, 3, 4],
            num_classes=NUM_CLASSES,
            class_names=[synsets[i] for i in indices],
        )
        dataset, info = build(
            "folder",
            path=self.dir,
            num_classes=1000,
            preprocess=preprocessing.Options(image_size=4),
            with_info=True,
        )
        self.assertEqual(info.label_mapping, "imagenet_synsets")
        self.assertEqual(info.class_names, synsets)
        self.assertEqual(info.num_examples, NUM_EXAMPLES)
        labels = np.concatenate([y.numpy() for _, y in dataset])
        self.assertAllEqual(labels, sorted(indices * 2))

    @parameterized.named_parameters(
        dict(
            testcase_name="synset_beyond_num_classes",
            folders={"n01514668": 1},  # synsets()[7]
            kwargs={},
            message="Label 'n01514668' of folder '{dir}/n01514668' is outside "
            "the class range: after the label offset it is 7, not in [0, 5). "
            "Check `label_offset` and `num_classes`.",
        ),
        dict(
            testcase_name="no_class_folders",
            folders={},
            kwargs={},
            message="Argument `path` must be a folder of class subfolders "
            "(one subfolder of images per class). Received: path='{dir}', "
            "which has no subfolders. Point it at the folder above the class "
            "folders, or use source='files' for a flat folder.",
        ),
        dict(
            testcase_name="class_folders_without_images",
            folders={"cats": 0},
            kwargs={},
            message="Argument `path` must hold images (extensions ['.bmp', "
            "'.gif', '.jpeg', '.jpg', '.png']) in its class subfolders. "
            "Received: path='{dir}', whose 1 subfolders hold no image files. "
            "Point it at the folder of class folders of images.",
        ),
        dict(
            testcase_name="label_offset_rejected",
            folders={},
            kwargs={"label_offset": 1},
            message="Argument `label_offset` does not apply to "
            "source='folder' (labels come from folder names). "
            "Received: label_offset=1",
        ),
    )
    def test_error(self, folders, kwargs, message):
        # `folders`: {class folder: number of images in it}.
        for name, num_images in folders.items():
            os.makedirs(os.path.join(self.dir, name))
            testing.write_image_files(
                os.path.join(self.dir, name),
                [0] * num_images,
                num_classes=NUM_CLASSES,
            )
        with self.assertRaisesMessage(ValueError, message.format(dir=self.dir)):
            build("folder", path=self.dir, **kwargs)


class RealFolderTest(RealImagesTestCase):
    def test_maps_all_1000_synsets(self):
        source = self.imagenet / "sample_1000"
        rows = imagenet.read_tsv_labels(source / "labels.tsv")
        expected = {row.file: row.label for row in rows}
        self.assertLen(expected, 1000)
        root = self.create_tempdir().full_path
        # Folders in a shuffled creation order: the mapping must not care.
        rng = np.random.default_rng(0)
        files = sorted(expected)
        for i in rng.permutation(len(files)):
            synset = files[i].split("_")[0]
            os.makedirs(os.path.join(root, synset), exist_ok=True)
            os.symlink(source / files[i], os.path.join(root, synset, files[i]))
        dataset, info = build(
            "folder",
            path=root,
            batch_size=500,
            num_classes=1000,
            preprocess=preprocessing.Options(image_size=4),
            with_info=True,
        )
        self.assertEqual(info.num_examples, 1000)
        self.assertEqual(info.label_mapping, "imagenet_synsets")
        labels = np.concatenate([y.numpy() for _, y in dataset])
        self.assertAllEqual(labels, [expected[f] for f in files])
        self.assertAllEqual(labels, np.arange(1000))
