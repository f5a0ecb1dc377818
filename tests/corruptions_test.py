"""Tests of tf_topk.corruptions: the ImageNet-C layout, AlexNet's table,
CE / mCE against hand computations."""

import os

import tensorflow as tf
from absl.testing import parameterized

from tf_topk import corruptions


def make_tree(root, layout):
    """Empty cell folders: layout {relative corruption path: severities}."""
    for path, severities in layout.items():
        for severity in severities:
            os.makedirs(os.path.join(root, path, str(severity), "n01440764"))


class AlexNetTableTest(tf.test.TestCase):
    def test_per_severity_means_equal_the_published_averages(self):
        for corruption, errors in corruptions.ALEXNET_TOP1_ERROR.items():
            self.assertAlmostEqual(
                sum(errors) / 5,
                corruptions.ALEXNET_MEAN_TOP1_ERROR[corruption],
                places=6,
                msg=corruption,
            )

    def test_every_corruption_has_a_figure(self):
        self.assertLen(corruptions.BENCHMARK, 15)
        self.assertLen(corruptions.EXTRA, 4)
        self.assertCountEqual(
            corruptions.ALEXNET_TOP1_ERROR, corruptions.BENCHMARK
        )
        self.assertCountEqual(
            corruptions.ALEXNET_MEAN_TOP1_ERROR, corruptions.CORRUPTIONS
        )

    def test_extra_corruption_needs_all_severities(self):
        self.assertAlmostEqual(
            corruptions.alexnet_error_sum("spatter", [1, 2, 3, 4, 5]),
            5 * 0.717512,
        )
        with self.assertRaisesRegex(
            ValueError,
            r"'spatter' are published as their mean over severities 1-5 "
            r"only, so its CE needs all five. Received: severities=\[1, 3\]",
        ):
            corruptions.alexnet_error_sum("spatter", [3, 1])


class FindCellsTest(tf.test.TestCase):
    def test_group_folders_and_flat_corruptions(self):
        root = self.create_tempdir().full_path
        make_tree(
            root,
            {
                "noise/gaussian_noise": [1, 2, 3, 4, 5],
                "motion_blur": [4, 2],
                "extra/spatter": [1],
            },
        )
        cells = corruptions.find_cells(root)
        self.assertEqual(
            [cell.name for cell in cells],
            [f"gaussian_noise/{s}" for s in range(1, 6)]
            + ["motion_blur/2", "motion_blur/4", "spatter/1"],
        )
        self.assertEqual(cells[5].path, os.path.join(root, "motion_blur", "2"))

    def test_unknown_folder_is_named(self):
        root = self.create_tempdir().full_path
        make_tree(root, {"gaussian_noise": [1], "clean": [1]})
        with self.assertRaisesRegex(
            ValueError,
            r"clean' is not an ImageNet-C corruption\. Received: 'clean'",
        ):
            corruptions.find_cells(root)

    def test_bad_severity_and_empty_root(self):
        root = self.create_tempdir().full_path
        make_tree(root, {"fog": [6]})
        with self.assertRaisesRegex(ValueError, "is not a severity"):
            corruptions.find_cells(root)
        empty = self.create_tempdir().full_path
        with self.assertRaisesRegex(ValueError, "which holds none"):
            corruptions.find_cells(empty)
        with self.assertRaisesRegex(FileNotFoundError, "is not a folder"):
            corruptions.find_cells(os.path.join(empty, "missing"))


def counts(corruption, severity, correct, total=10):
    return corruptions.CellCounts(corruption, severity, total, correct)


class SummarizeTest(tf.test.TestCase, parameterized.TestCase):
    def cells(self):
        return [
            # gaussian_noise, all severities: errors .1 .2 .3 .4 .5
            *(counts("gaussian_noise", s, 10 - s) for s in range(1, 6)),
            # motion_blur at severities 2 and 4 only: errors .5 and 1.0
            counts("motion_blur", 4, 0),
            counts("motion_blur", 2, 5),
            # extras: spatter complete, saturate partial
            *(counts("spatter", s, 5) for s in range(1, 6)),
            counts("saturate", 1, 9),
        ]

    def test_ce_and_mce_by_hand(self):
        summary = corruptions.summarize(self.cells())
        gaussian = 1.5 / (0.69528 + 0.82542 + 0.93554 + 0.98138 + 0.99452)
        motion = 1.5 / (0.70048 + 0.8975)
        spatter = 2.5 / (5 * 0.717512)
        self.assertAlmostEqual(
            summary.corruption_errors["gaussian_noise"], gaussian
        )
        self.assertAlmostEqual(summary.corruption_errors["motion_blur"], motion)
        self.assertAlmostEqual(summary.corruption_errors["spatter"], spatter)
        self.assertIsNone(summary.corruption_errors["saturate"])
        # Extras are reported, never averaged in.
        self.assertAlmostEqual(summary.mce, (gaussian + motion) / 2)
        self.assertIsNone(summary.relative_mce)
        self.assertEqual(summary.missing_severities["motion_blur"], (1, 3, 5))
        self.assertEqual(summary.missing_severities["saturate"], (2, 3, 4, 5))
        self.assertNotIn("gaussian_noise", summary.missing_severities)
        self.assertIn("fog", summary.missing_corruptions)
        self.assertNotIn("spatter", summary.missing_corruptions)
        # Sorted as the paper lists them.
        self.assertEqual(
            [(c.corruption, c.severity) for c in summary.cells][5:7],
            [("motion_blur", 2), ("motion_blur", 4)],
        )

    def test_relative_mce_by_hand(self):
        summary = corruptions.summarize(self.cells(), clean_top1=0.95)
        clean = 0.05
        alexnet_clean = corruptions.ALEXNET_CLEAN_TOP1_ERROR
        gaussian = (1.5 - 5 * clean) / (
            (0.69528 + 0.82542 + 0.93554 + 0.98138 + 0.99452)
            - 5 * alexnet_clean
        )
        motion = (1.5 - 2 * clean) / ((0.70048 + 0.8975) - 2 * alexnet_clean)
        self.assertAlmostEqual(summary.relative_mce, (gaussian + motion) / 2)
        record = summary.to_dict()
        self.assertEqual(record["clean_top1"], 0.95)
        self.assertEqual(record["cells"][0]["top1_correct"], 9)
        self.assertAlmostEqual(record["cells"][0]["top1"], 0.9)

    def test_only_extras_have_no_mce(self):
        summary = corruptions.summarize(
            [counts("spatter", s, 5) for s in range(1, 6)]
        )
        self.assertIsNone(summary.mce)

    @parameterized.named_parameters(
        ("unknown", [counts("blur", 1, 1)], "must hold ImageNet-C cells"),
        (
            "twice",
            [counts("fog", 1, 1), counts("fog", 1, 2)],
            "'fog' at severity 1 twice",
        ),
    )
    def test_bad_cells(self, cells, message):
        with self.assertRaisesRegex(ValueError, message):
            corruptions.summarize(cells)
