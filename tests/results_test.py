"""Tests of what a run measured (tf_topk.results)."""

import math

import tensorflow as tf

from tf_topk import results, testing


class WilsonIntervalTest(tf.test.TestCase):
    def test_wilson_interval_hand_values(self):
        # Wilson (1927) 95% interval of 7/10: [0.3968, 0.8922].
        low, high = results.wilson_interval(7, 10)
        self.assertAlmostEqual(low, 0.39678, places=4)
        self.assertAlmostEqual(high, 0.89221, places=4)
        low, high = results.wilson_interval(0, 10)
        self.assertEqual(low, 0.0)
        self.assertAlmostEqual(high, 0.27753, places=4)
        self.assertTrue(all(map(math.isnan, results.wilson_interval(0, 0))))

    def test_stays_inside_zero_and_one(self):
        for correct in range(11):
            low, high = results.wilson_interval(correct, 10)
            self.assertBetween(low, 0.0, correct / 10 + 1e-12)
            self.assertBetween(high, correct / 10 - 1e-12, 1.0)


class EvalResultTest(tf.test.TestCase):
    def test_accuracy_interval_and_summary(self):
        result = testing.eval_result()
        self.assertAlmostEqual(result.accuracy(1), 0.7)
        self.assertAlmostEqual(result.accuracy(5), 0.9)
        self.assertEqual(
            result.summary(),
            "top1=0.7000 [0.3968, 0.8922] top5=0.9000 [0.5958, 0.9821] (n=10)",
        )
        with self.assertRaisesRegex(
            ValueError,
            r"^Argument `k` must be one of the evaluated ks \[1, 5\]\. "
            r"Received: k=3$",
        ):
            result.accuracy(3)

    def test_per_class_top1_is_nan_for_a_class_without_examples(self):
        top1 = testing.eval_result().per_class_top1
        self.assertEqual(top1[:2], (1.0, 0.5))
        self.assertTrue(math.isnan(top1[2]))

    def test_model_rate_over_the_loops_examples(self):
        # 10 examples, 4 restored from a checkpoint: 6 ran in 1.5 s.
        result = testing.eval_result(resumed_from=4)
        self.assertAlmostEqual(result.model_images_per_s, 4.0)
        self.assertIsNone(
            testing.eval_result(model_time_s=0.0).model_images_per_s
        )

    def test_from_record_inverts_to_dict(self):
        result = testing.eval_result(
            per_class_correct=None, per_class_count=None
        )
        self.assertEqual(results.from_record(result.to_dict()), result)


class TimingTest(tf.test.TestCase):
    def test_run_rate_is_examples_over_wall_time(self):
        timing = results.Timing(
            local_seen=10, input_time=1.0, model_time=2.0, wall_time=4.0
        )
        self.assertEqual(timing.images_per_s(10), 2.5)
        # Two workers that each ran 10 of 20 examples in the same steps.
        self.assertEqual(timing.images_per_s(20), 5.0)
        self.assertEqual(results.Timing().images_per_s(0), 0.0)


if __name__ == "__main__":
    tf.test.main()
