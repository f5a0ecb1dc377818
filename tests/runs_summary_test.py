"""Tests of tf_topk.runs.summary: the table a run prints."""

import tensorflow as tf

from tf_topk import testing
from tf_topk.runs import summary


class FormatTableTest(tf.test.TestCase):
    def test_table_lines(self):
        table = summary.format_table(
            testing.eval_result(), title="tf_topk: oracle", published={1: 0.75}
        )
        lines = table.splitlines()
        self.assertEqual(lines[0], "tf_topk: oracle")
        self.assertIn("70.00%", lines[2])
        self.assertIn("7 / 10", lines[2])
        self.assertIn("75.00%", lines[2])
        self.assertIn("90.00%", lines[3])
        self.assertIn("1 non-finite predictions", table)
        self.assertIn("tie-decided (inclusive): top1: 1", table)
        self.assertNotIn("input pipeline alone", table)
        self.assertNotIn("most top-1 errors", table)  # No class names.

    def test_table_gives_the_input_rate_and_whether_it_limits(self):
        for limited, suffix in ((False, ""), (True, " (it limits this run)")):
            table = summary.format_table(
                testing.eval_result(
                    input_images_per_s=12.34, input_limited=limited
                ),
                title="t",
            )
            self.assertIn(
                f"input pipeline alone: 12.3 images/s{suffix}\n", table + "\n"
            )

    def test_classes_with_the_most_errors(self):
        # Correct / count per class: 2/2, 1/2, 0/0, 2/3, 2/3: one error
        # each in b, d, e; b has the lowest top-1; a and c none.
        table = summary.format_table(
            testing.eval_result(), class_names=list("abcde"), num_worst=2
        )
        self.assertEqual(
            table.splitlines()[-1], "most top-1 errors: b 1/2; d 2/3"
        )


if __name__ == "__main__":
    tf.test.main()
