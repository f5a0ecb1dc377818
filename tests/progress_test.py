"""Tests of the progress display (tf_topk.progress)."""

import doctest
import sys

import keras
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import evaluation, progress, testing


def oracle_data():
    """10 painted images in batches of 4, 4 and 2: the first 7 right."""
    dataset, _, _ = testing.oracle_dataset(10, 7)
    return dataset, None


class ProgressTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.model = testing.oracle_model(5)

    def test_log_lines_report_running_accuracy(self):
        dataset, _ = oracle_data()  # 7 of 10 right: the first 7.
        with self.assertLogs(logger="absl", level="INFO") as logs:
            evaluation.evaluate(
                self.model,
                dataset,
                progress=progress.Progress("log", log_every_n_examples=4),
            )
        lines = [r.getMessage() for r in logs.records]
        self.assertIn("Processed 4 images. top1=1.0000 top5=1.0000", lines)
        self.assertIn("Processed 8 images. top1=0.8750 top5=1.0000", lines)

    def test_progress_bar_shows_running_accuracy(self):
        dataset, _ = oracle_data()
        with self.captureWritesToStream(sys.stdout) as captured:
            evaluation.evaluate(
                self.model, dataset, progress="bar", expected_num_examples=10
            )
        self.assertIn("3/3", captured.contents())
        self.assertIn("top1: 0.7000", captured.contents())

    @parameterized.parameters("auto", "bar", "log", "none")
    def test_validate_progress(self, mode):
        self.assertEqual(progress.validate(mode), mode)

    @parameterized.named_parameters(
        (
            "unknown_mode",
            "verbose",
            ValueError,
            r"^Argument `progress` must "
            r"be one of \['auto', 'bar', 'log', 'none'\] or a tf_topk\.progress"
            r"\.Progress\. Received: progress='verbose'$",
        ),
        (
            "not_a_mode",
            3,
            TypeError,
            r"^Argument `progress` must be one of "
            r".* or a tf_topk\.progress\.Progress\. Received: progress of type "
            r"int$",
        ),
    )
    def test_bad_progress(self, value, error, message):
        dataset, _ = oracle_data()
        with self.assertRaisesRegex(error, message):
            evaluation.evaluate(self.model, dataset, progress=value)

    @parameterized.parameters(0, -1, 2.5, True)
    def test_bad_log_interval(self, value):
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `log_every_n_examples` must be a positive integer\. "
            rf"Received: log_every_n_examples={value!r}$",
        ):
            progress.Progress("log", log_every_n_examples=value)

    def test_none_shows_nothing(self):
        dataset, _ = oracle_data()
        with self.captureWritesToStream(sys.stdout) as captured:
            evaluation.evaluate(self.model, dataset, progress="none")
        self.assertEqual(captured.contents(), "")

    def test_doctest(self):
        failures, _ = doctest.testmod(progress)
        self.assertEqual(failures, 0)


if __name__ == "__main__":
    tf.test.main()
