"""Tests of tf_topk.runs.compare: the paired comparison of two runs."""

import fractions
import json
import math
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from runs_predictions_test import line, write_run

from tf_topk import imagenet
from tf_topk.runs import compare, predictions

NUM_CLASSES = 12


def top_list(label, position, num_classes=NUM_CLASSES, width=10):
    """Top classes with `label` at `position` (None: not in them)."""
    others = [c for c in range(num_classes) if c != label]
    if position is None:
        return others[:width]
    top = others[: width - 1]
    top.insert(position, label)
    return top


# Ten examples, label i % 5. Top-1: A right on 0-6, B on 0-4 and 7, so both
# 5, only A 2, only B 1, neither 2. Top-5 (label at place 3 counts, place 7
# does not): A right on 0-8, B on 0-5 and 7-9: both 8, only A 1, only B 1.
A_PLACES = [0, 0, 0, 0, 0, 0, 0, 3, 3, None]
B_PLACES = [0, 0, 0, 0, 0, 3, 7, 0, 3, 3]


def records(places):
    return [
        line(f"img{i:02d}", [i % 5], top_list(i % 5, place))
        for i, place in enumerate(places)
    ]


class McNemarTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("one_nine", 1, 9, 2 * (1 + 10) / 1024),  # 0.021484375
        ("nine_one", 9, 1, 0.021484375),
        ("none", 0, 0, 1.0),
        ("equal", 4, 4, 1.0),
        ("zero_five", 0, 5, 2 / 32),
        ("zero_one", 0, 1, 1.0),
        ("two_one", 2, 1, 1.0),
        ("zero_ten", 0, 10, 2 / 1024),
    )
    def test_hand_values(self, only_a, only_b, expected):
        self.assertAlmostEqual(
            compare.mcnemar_exact(only_a, only_b), expected, places=14
        )

    @parameterized.named_parameters(
        ("small", 3, 11), ("medium", 40, 62), ("large", 400, 470)
    )
    def test_equals_exact_fraction_and_is_symmetric(self, only_a, only_b):
        n, smaller = only_a + only_b, min(only_a, only_b)
        tail = fractions.Fraction(
            sum(math.comb(n, i) for i in range(smaller + 1)), 2**n
        )
        expected = float(min(1, 2 * tail))
        self.assertAlmostEqual(
            compare.mcnemar_exact(only_a, only_b) / expected, 1.0, places=9
        )
        self.assertEqual(
            compare.mcnemar_exact(only_a, only_b),
            compare.mcnemar_exact(only_b, only_a),
        )

    def test_huge_counts_stay_finite(self):
        p = compare.mcnemar_exact(500_000, 502_000)
        self.assertGreater(p, 0.0)
        self.assertLess(p, 0.1)
        self.assertEqual(compare.mcnemar_exact(10**6, 10**6), 1.0)


def brute_force_newcombe(both, first_only, second_only, neither):
    """Method 10 from its definition: Wilson limits by bisection."""
    z, n = 1.959963984540054, both + first_only + second_only + neither

    def wilson(x):
        p = x / n

        def root(low, high, outside):
            # |p - t| = z sqrt(t (1 - t) / n) on [low, high].
            for _ in range(200):
                t = (low + high) / 2
                if (abs(p - t) > z * math.sqrt(t * (1 - t) / n)) == outside(t):
                    low = t
                else:
                    high = t
            return (low + high) / 2

        lower = 0.0 if x == 0 else root(0.0, p, lambda t: True)
        upper = 1.0 if x == n else root(p, 1.0, lambda t: False)
        return lower, upper

    p1, p2 = (both + first_only) / n, (both + second_only) / n
    (l1, u1), (l2, u2) = wilson(both + first_only), wilson(both + second_only)
    margins = (
        (both + first_only) * (second_only + neither)
        * (both + second_only) * (first_only + neither)
    )  # fmt: skip
    a = both * neither - first_only * second_only
    if margins == 0 or 0 <= a <= n / 2:
        phi = 0.0
    elif a > n / 2:
        phi = (a - n / 2) / math.sqrt(margins)
    else:
        phi = a / math.sqrt(margins)
    delta = math.sqrt(
        (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    )
    epsilon = math.sqrt(
        (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    )
    return p1 - p2 - delta, p1 - p2 + epsilon


class NewcombeIntervalTest(tf.test.TestCase, parameterized.TestCase):
    def test_published_example(self):
        # Cavo et al. (2012), table [[59, 6], [16, 80]]: Fagerland, Lydersen
        # & Laake (2017) report -0.0621 (95% CI -0.1186 to -0.0046) for
        # Newcombe's square-and-add interval (the R contingencytables tests).
        low, high = compare.newcombe_interval(59, 6, 16, 80)
        self.assertAlmostEqual(low, -0.1186, places=4)
        self.assertAlmostEqual(high, -0.0046, places=4)

    @parameterized.named_parameters(
        ("cavo", 59, 6, 16, 80),
        ("positive_association", 12, 9, 2, 21),
        ("negative_association", 1, 1, 7, 12),
        ("no_discordant", 30, 0, 0, 10),
        ("all_wrong", 0, 0, 0, 20),
        ("all_right", 20, 0, 0, 0),
        ("only_first", 0, 10, 0, 0),
        ("small_association", 5, 4, 4, 5),
    )
    def test_matches_brute_force_definition(self, *cells):
        low, high = compare.newcombe_interval(*cells)
        self.assertAllClose(
            [low, high], brute_force_newcombe(*cells), atol=1e-9
        )
        n = sum(cells)
        difference = (cells[1] - cells[2]) / n
        self.assertBetween(difference, low - 1e-12, high + 1e-12)
        self.assertBetween(low, -1.0, 1.0)
        self.assertBetween(high, -1.0, 1.0)

    def test_swapping_runs_mirrors_the_interval(self):
        low, high = compare.newcombe_interval(12, 9, 2, 21)
        mirrored = compare.newcombe_interval(12, 2, 9, 21)
        self.assertAllClose(mirrored, (-high, -low), atol=1e-12)

    def test_no_pairs(self):
        self.assertTrue(np.isnan(compare.newcombe_interval(0, 0, 0, 0)).all())


class CompareTest(tf.test.TestCase, parameterized.TestCase):
    def make_runs(self, a_records, b_records):
        root = self.get_temp_dir()
        a = write_run(os.path.join(root, "a"), [a_records])
        b = write_run(os.path.join(root, "b"), [b_records])
        return predictions.load(a), predictions.load(b)

    def test_hand_checked_tables(self):
        a, b = self.make_runs(records(A_PLACES), records(B_PLACES))
        comparison = compare.compare(a, b, top_n_classes=2)
        t1, t5 = comparison.top1, comparison.top5
        self.assertEqual(comparison.num_examples, 10)
        self.assertEqual(
            (t1.both_correct, t1.only_a, t1.only_b, t1.neither), (5, 2, 1, 2)
        )
        self.assertEqual(
            (t5.both_correct, t5.only_a, t5.only_b, t5.neither), (8, 1, 1, 0)
        )
        for table, right_a, right_b in ((t1, 7, 6), (t5, 9, 9)):
            self.assertEqual(table.both_correct + table.only_a, right_a)
            self.assertEqual(table.both_correct + table.only_b, right_b)
            cells = (table.both_correct, table.only_a, table.only_b)
            self.assertEqual(sum(cells) + table.neither, 10)
            self.assertAllClose(table.accuracies, (right_a / 10, right_b / 10))
        # b=2, c=1: n=3, p = 2 * (1 + 3) / 8, capped at 1.
        self.assertEqual(t1.mcnemar_p, 1.0)
        self.assertAllClose(
            t1.interval95, compare.newcombe_interval(5, 1, 2, 2)
        )
        # Per class (label i % 5): A 2/2, 2/2, 1/2, 1/2, 1/2; B 1/2, 1/2,
        # 2/2, 1/2, 1/2: classes 0, 1, 2 moved by 0.5; the two first listed.
        moved = comparison.classes_moved
        self.assertEqual([m.class_index for m in moved], [0, 1])
        self.assertEqual(
            moved[0], compare.ClassChange(0, "", 2, 1.0, 0.5, -0.5)
        )

    def test_unchanged_classes_are_left_out_and_names_used(self):
        a, b = self.make_runs(records(A_PLACES), records(B_PLACES))
        names = ["zero", "one", "two"]  # Shorter than the classes: "" after.
        moved = compare.compare(a, b, class_names=names).classes_moved
        self.assertEqual(
            [(m.class_index, m.class_name, m.change) for m in moved],
            [(0, "zero", -0.5), (1, "one", -0.5), (2, "two", 0.5)],
        )
        self.assertEqual(
            compare.compare(a, b, top_n_classes=0).classes_moved, ()
        )

    def test_multi_label_any_label_counts_and_unlabeled_left_out(self):
        a_records = [
            line("p", [1, 3], [3, 0, 1]),  # Right (3).
            line("q", [], [0, 1, 2]),  # Unlabeled: left out.
            line("r", [2, 4], [0, 1, 2]),  # Top-5 only.
        ]
        b_records = [
            line("p", [3, 1], [0, 2, 4]),  # Wrong, same label set.
            line("q", [], [1, 0, 2]),
            line("r", [4, 2], [4, 0, 1]),  # Right (4).
        ]
        a, b = self.make_runs(a_records, b_records)
        self.assertEqual(a.labels.tolist(), [[1, 3], [-1, -1], [2, 4]])
        comparison = compare.compare(a, b)
        self.assertEqual(comparison.num_examples, 2)
        self.assertEqual(comparison.unlabeled, 1)
        t1, t5 = comparison.top1, comparison.top5
        self.assertEqual(
            (t1.both_correct, t1.only_a, t1.only_b, t1.neither), (0, 1, 1, 0)
        )
        self.assertEqual(
            (t5.both_correct, t5.only_a, t5.only_b, t5.neither), (1, 1, 0, 0)
        )
        # Each example counts for each of its classes: 1, 3 down; 2, 4 up.
        self.assertEqual(
            [(m.class_index, m.change) for m in comparison.classes_moved],
            [(1, -1.0), (2, 1.0), (3, -1.0), (4, 1.0)],
        )

    def test_fewer_than_ten_classes(self):
        # Three classes: top-5 is always right, padding never matches.
        a, b = self.make_runs(
            [line("u", [2], [0, 1, 2]), line("v", [0], [0, 2, 1])],
            [line("u", [2], [2, 0, 1]), line("v", [0], [1, 2, 0])],
        )
        self.assertEqual(a.top_classes[0].tolist(), [0, 1, 2] + [-1] * 7)
        comparison = compare.compare(a, b)
        self.assertEqual(comparison.top5.to_dict()["top5_a"], 1.0)
        self.assertEqual(comparison.top5.to_dict()["top5_b"], 1.0)
        self.assertEqual(comparison.top1.only_a, 1)
        self.assertEqual(comparison.top1.only_b, 1)

    def test_non_finite_scores_count_wrong(self):
        a, b = self.make_runs(
            [line("u", [0], [0, 1], [float("nan"), 0.1])],
            [line("u", [0], [0, 1])],
        )
        table = compare.compare(a, b).top1
        self.assertEqual((table.only_a, table.only_b), (0, 1))

    def test_different_examples_are_refused_with_counts(self):
        a, b = self.make_runs(
            [line(i, [0], [0]) for i in ("a", "b", "c", "d")],
            [line(i, [0], [0]) for i in ("c", "d", "e")],
        )
        with self.assertRaises(ValueError) as caught:
            compare.compare(a, b)
        self.assertEqual(
            str(caught.exception),
            f"Runs A ({a.source}) and B ({b.source}) were evaluated on "
            "different examples: 2 id(s) only in A (e.g. ['a', 'b']) and 1 "
            "only in B (e.g. ['e']). A paired comparison needs the same "
            "examples: evaluate both on the same data.",
        )

    def test_different_labels_are_refused_naming_the_id(self):
        a, b = self.make_runs(
            [line("a", [0], [0]), line("b", [1], [0])],
            [line("a", [0], [0]), line("b", [2], [0])],
        )
        with self.assertRaises(ValueError) as caught:
            compare.compare(a, b)
        self.assertEqual(
            str(caught.exception),
            f"Runs A ({a.source}) and B ({b.source}) disagree on the labels "
            "of 1 example(s), e.g. id 'b': [1] in A, [2] in B. Evaluate both "
            "with the same ground truth (labels file, label offset).",
        )

    def test_no_labeled_example_is_refused(self):
        a, b = self.make_runs([line("a", [], [0])], [line("a", [], [0])])
        with self.assertRaisesRegex(
            ValueError,
            r"have no labeled example to compare\. Received: 1 example\(s\), "
            "none labeled.",
        ):
            compare.compare(a, b)

    @parameterized.named_parameters(("negative", -1), ("float", 2.0))
    def test_bad_top_n_classes(self, value):
        a, b = self.make_runs([line("a", [0], [0])], [line("a", [0], [0])])
        with self.assertRaises(ValueError) as caught:
            compare.compare(a, b, top_n_classes=value)
        self.assertEqual(
            str(caught.exception),
            "Argument `top_n_classes` must be an int >= 0. Received: "
            f"top_n_classes={value!r}",
        )


class CompareRunsTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        root = self.get_temp_dir()
        self.a = write_run(os.path.join(root, "run_a"), [records(A_PLACES)])
        self.b = write_run(os.path.join(root, "run_b"), [records(B_PLACES)])
        self.out = os.path.join(root, "out")

    def test_writes_comparison_json(self):
        comparison = compare.compare_runs(self.a, self.b, self.out)
        self.assertEqual(os.listdir(self.out), ["comparison.json"])
        with open(os.path.join(self.out, "comparison.json")) as f:
            record = json.load(f)
        self.assertEqual(record, comparison.to_dict())
        self.assertEqual(
            list(record),
            [
                "num_examples", "both_correct", "only_a", "only_b",
                "neither", "mcnemar_p", "top1_a", "top1_b",
                "top1_difference", "difference_interval95", "top5",
                "classes_moved",
            ],
        )  # fmt: skip
        self.assertEqual(
            list(record["top5"]),
            [
                "both_correct", "only_a", "only_b", "neither", "mcnemar_p",
                "top5_a", "top5_b", "top5_difference", "difference_interval95",
            ],
        )  # fmt: skip
        self.assertEqual(record["num_examples"], 10)
        self.assertEqual(record["both_correct"], 5)
        self.assertAlmostEqual(record["top1_a"], 0.7)
        self.assertAlmostEqual(record["top1_b"], 0.6)
        self.assertAlmostEqual(record["top1_difference"], -0.1)
        self.assertEqual(
            record["classes_moved"][0],
            {
                "class_index": 0, "class_name": "", "count": 2,
                "top1_a": 1.0, "top1_b": 0.5, "change": -0.5,
            },
        )  # fmt: skip

    def test_run_without_predictions_is_refused(self):
        empty = os.path.join(self.get_temp_dir(), "no_predictions")
        os.makedirs(empty)
        with self.assertRaisesRegex(
            FileNotFoundError,
            f"Run '{empty}' has no complete set of saved predictions.*"
            r"--config\.eval\.save_predictions=True",
        ):
            compare.compare_runs(self.a, empty, self.out)
        self.assertFalse(os.path.exists(self.out))

    def test_empty_workdir_is_refused(self):
        with self.assertRaisesRegex(
            ValueError,
            "Argument `workdir` must name an output folder. Received: "
            "workdir=''",
        ):
            compare.compare_runs(self.a, self.b, "")

    def test_results_json_disagreement_is_logged(self):
        for workdir, top1, ties in ((self.a, 0.7, 0), (self.b, 0.5, 0)):
            with open(os.path.join(workdir, "results.json"), "w") as f:
                record = {
                    "top1": top1,
                    "top5": 0.9,
                    "num_scored": 10,
                    "ties": {"top1": ties, "top5": 0},
                }
                json.dump(record, f)
        with self.assertLogs(level="WARNING") as logs:
            compare.compare_runs(self.a, self.b, self.out)
        self.assertLen(logs.output, 1)
        self.assertIn(
            "Run B: top1 from its predictions is 0.600000 (n=10) but 0.500000"
            " in its results.json (n=10, ties=0); with no tie they should "
            "agree: are both of one run?",
            logs.output[0],
        )

    def test_class_names_from_per_class_csv(self):
        with open(os.path.join(self.a, "per_class.csv"), "w") as f:
            f.write("class_index,class_name,correct,count,top1\n")
            f.writelines(f"{i},name{i},0,0,\n" for i in range(5))
        comparison = compare.compare_runs(self.a, self.b, self.out)
        self.assertEqual(comparison.classes_moved[0].class_name, "name0")
        self.assertIsNone(compare.run_class_names(self.b))

    def test_imagenet_synsets_become_words(self):
        with open(os.path.join(self.a, "per_class.csv"), "w") as f:
            f.write("class_index,class_name,correct,count,top1\n")
            f.writelines(
                f"{i},{s},0,0,\n" for i, s in enumerate(imagenet.synsets())
            )
        names = compare.run_class_names(self.a)
        self.assertEqual(names[281], "tabby, tabby cat")


class CheckAgainstResultsTest(tf.test.TestCase):
    def test_agreement_ties_and_missing_records(self):
        comparison = compare.Comparison(
            10,
            compare.PairedTable(1, 5, 2, 1, 2),
            compare.PairedTable(5, 8, 1, 1, 0),
            (),
        )
        agree = {"top1": 0.7, "top5": 0.9, "ties": {"top1": 0, "top5": 0}}
        self.assertEqual(
            compare.check_against_results(comparison, agree, None), []
        )
        tied = {"top1": 0.8, "num_scored": 10, "ties": {"top1": 1}}
        self.assertEqual(
            compare.check_against_results(comparison, None, tied),
            [
                "Run B: top1 from its predictions is 0.600000 (n=10) but "
                "0.800000 in its results.json (n=10, ties=1); expected: "
                "tf.math.in_top_k counts a tied true class correct."
            ],
        )


class FormatComparisonTest(tf.test.TestCase):
    def test_lines(self):
        root = self.get_temp_dir()
        a = write_run(os.path.join(root, "a"), [records(A_PLACES)])
        b = write_run(os.path.join(root, "b"), [records(B_PLACES)])
        comparison = compare.compare(
            predictions.load(a),
            predictions.load(b),
            class_names=["tench", "goldfish", "great white shark"],
        )
        low, high = comparison.top1.interval95
        lines = compare.format_comparison(comparison).splitlines()
        self.assertEqual(
            lines[:6],
            [
                "Paired comparison over 10 examples",
                f"  A: {a}",
                f"  B: {b}",
                "top-1        B correct   B wrong",
                "A correct            5         2",
                "A wrong              1         2",
            ],
        )
        self.assertEqual(
            lines[6],
            "top-1: A 0.7000  B 0.6000  B - A -0.1000 [95% CI "
            f"{low:+.4f}, {high:+.4f}]  McNemar p=1",
        )
        self.assertStartsWith(
            lines[7], "top-5: A 0.9000  B 0.9000  B - A +0.0000"
        )
        self.assertEqual(
            lines[8], "top-5 table: both 8, only A 1, only B 1, neither 0"
        )
        self.assertEqual(
            lines[-1],
            "      2  great white shark                  2  0.5000  1.0000 "
            "(+0.5000)",
        )
        self.assertEqual(
            lines[9:12],
            [
                "(interval: Newcombe 1998 method 10; p: exact McNemar)",
                "Classes whose top-1 moved most (B - A):",
                "  class  name                               n       A       B",
            ],
        )
        self.assertLen(lines, 15)


if __name__ == "__main__":
    tf.test.main()
