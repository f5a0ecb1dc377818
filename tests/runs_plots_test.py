"""Tests of tf_topk.runs.plots: the report's images as bytes."""

import os

import tensorflow as tf

from tf_topk import testing
from tf_topk.runs import plots


class PlotsTest(tf.test.TestCase):
    def test_bar_chart_lengths_must_match(self):
        with self.assertRaisesRegex(
            ValueError,
            r"Arguments `labels` and `values` must have the same length\. "
            r"Received: 2 labels and 1 values",
        ):
            plots.bar_chart(["a", "b"], [1.0], title="t", xlabel="x")

    def test_figures_are_png(self):
        for png in (
            plots.topk_curve([0.5, 0.75], published={1: 0.6}),
            plots.per_class_histogram([0.0, 0.5, 1.0]),
            plots.bar_chart(["a", "b"], [2, 1], title="t", xlabel="x"),
        ):
            self.assertEqual(tf.io.decode_png(png).shape[-1], 4)

    def test_thumbnail_longer_side_bounded(self):
        directory = self.create_tempdir().full_path
        paths = testing.write_image_files(
            directory, [0], num_classes=5, height=300, width=200
        )
        image = tf.io.decode_jpeg(plots.thumbnail(paths[0], size=64))
        self.assertEqual(image.shape[:2], (64, 43))
        # Never enlarged.
        image = tf.io.decode_jpeg(plots.thumbnail(paths[0], size=1000))
        self.assertEqual(image.shape[:2], (300, 200))

    def test_tensorboard_images_named_by_key(self):
        logdir = os.path.join(self.create_tempdir().full_path, "tb")
        png = plots.bar_chart(["a"], [1], title="t", xlabel="x")
        plots.write_tensorboard_images({"chart": png}, logdir)
        events = tf.io.gfile.glob(os.path.join(logdir, "events.*"))
        tags = {
            value.tag
            for event in tf.compat.v1.train.summary_iterator(events[0])
            for value in event.summary.value
        }
        self.assertEqual(tags, {"report/chart"})


if __name__ == "__main__":
    tf.test.main()
