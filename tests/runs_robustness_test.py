"""Tests of tf_topk.runs.robustness (robustness.json / .md from leaderboard
rows), the heatmap, and the class restriction of the clean-200 baseline."""

import os

import numpy as np
import tensorflow as tf

from tf_topk import corruptions, datasets, imagenet, testing
from tf_topk.cli import leaderboard, requests
from tf_topk.runs import plots, robustness_page
from tf_topk.runs import robustness as robustness_files


def ok_row(run, correct, total, top5=None):
    return leaderboard.Row(
        run=run,
        model="m",
        status="ok",
        num_examples=total,
        top1=correct / total,
        top1_correct=correct,
        top5=None if top5 is None else top5 / total,
        top5_correct=top5,
        top1_interval95_low=0.1,
        top1_interval95_high=0.9,
    )


class RecordTest(tf.test.TestCase):
    def rows(self):
        return [
            ok_row("clean", 8, 10),
            ok_row("a", 1, 4),
            ok_row("a_clean200", 3, 4),
            ok_row("fog/1", 6, 10, top5=9),
            leaderboard.failed("fog/2", "m", ValueError("bad image")),
        ]

    def test_cells_datasets_drops_and_failures(self):
        content = robustness_files.record(
            self.rows(),
            cells=[("fog", 1, "fog/1"), ("fog", 2, "fog/2")],
            clean_top1=0.8,
            model="m",
        )
        self.assertEqual(
            content["cells"],
            [
                {
                    "corruption": "fog",
                    "severity": 1,
                    "num_examples": 10,
                    "top1_correct": 6,
                    "top5_correct": 9,
                    "top1": 0.6,
                    "top5": 0.9,
                }
            ],
        )
        fog = corruptions.ALEXNET_TOP1_ERROR["fog"][0]
        self.assertAlmostEqual(content["mce"], 0.4 / fog)
        self.assertAlmostEqual(
            content["relative_mce"],
            (0.4 - 0.2) / (fog - corruptions.ALEXNET_CLEAN_TOP1_ERROR),
        )
        self.assertEqual(content["missing_severities"], {"fog": [2, 3, 4, 5]})
        self.assertEqual(
            content["failed_runs"], {"fog/2": "ValueError: bad image"}
        )
        table = {e["dataset"]: e for e in content["datasets"]}
        self.assertEqual(list(table), ["clean", "a", "a_clean200"])
        self.assertAlmostEqual(table["a"]["top1_drop_from_clean"], 0.55)
        self.assertAlmostEqual(table["a"]["top1_drop_from_clean200"], 0.5)
        self.assertEqual(table["a"]["clean200_top1"], 0.75)
        self.assertEqual(table["a"]["top1_interval95"], [0.1, 0.9])
        self.assertNotIn("top1_drop_from_clean200", table["clean"])
        markdown = robustness_files.to_markdown(content)
        self.assertIn("| a | 4 | 25.00 |  | 10.00-90.00 | 55.00 |", markdown)
        self.assertIn("| fog | 40.00 |  |  |  |  |", markdown)
        self.assertIn("- fog/2: ValueError: bad image", markdown)
        page, figures = robustness_page.render(content)
        self.assertIn("ImageNet-C heatmap", page)
        self.assertEqual(figures["imagenet_c_heatmap"][:4], b"\x89PNG")

    def test_no_cells_no_imagenet_c_keys(self):
        content = robustness_files.record([ok_row("clean", 8, 10)])
        self.assertNotIn("mce", content)
        self.assertEqual(content["datasets"][0]["top1_drop_from_clean"], 0.0)


class HeatmapTest(tf.test.TestCase):
    def test_png_and_shape_check(self):
        png = plots.heatmap(
            ["fog", "snow"],
            ["1", "2"],
            [[10.0, None], [55.5, 90.0]],
            title="t",
            colorbar_label="c",
        )
        self.assertEqual(png[:4], b"\x89PNG")
        with self.assertRaisesRegex(ValueError, "one value per row"):
            plots.heatmap(
                ["a"], ["1", "2"], [[1.0]], title="t", colorbar_label="c"
            )


class ClassesTest(tf.test.TestCase):
    def test_only_the_examples_of_the_classes_are_read(self):
        directory = self.create_tempdir().full_path
        painted = np.arange(10) % 5
        labels = testing.oracle_labels(painted, 6, 5)
        testing.write_class_folders(
            directory,
            painted,
            labels,
            num_classes=5,
            class_names=list(imagenet.synsets()[:5]),
        )
        dataset, info = datasets.build(
            "folder",
            path=directory,
            classes=(3, 1),
            batch_size=4,
            with_info=True,
            num_classes=5,
        )
        read = np.concatenate([y.numpy() for _, y in dataset])
        self.assertEqual(sorted(read), sorted(x for x in labels if x in (1, 3)))
        self.assertEqual(info.num_examples, len(read))
        with self.assertRaisesRegex(ValueError, "none of which the data holds"):
            datasets.build("folder", path=directory, classes=(7,))

    def test_config_classes_are_parsed(self):
        self.assertEqual(requests.data_classes("3, 1"), (3, 1))
        self.assertIsNone(requests.data_classes(None))
        with self.assertRaisesRegex(
            ValueError,
            r"`config.data.classes` must be comma-separated class indices, "
            r"e.g. '1,7,42'. Received: 'a,b'",
        ):
            requests.data_classes("a,b")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf.test.main()
