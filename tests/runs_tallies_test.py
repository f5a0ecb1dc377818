"""Tests of tf_topk.runs.tallies: what the HTML page counts."""

import tensorflow as tf
from absl.testing import parameterized

from tf_topk import imagenet, results
from tf_topk.runs import files, predictions, tallies

LABELS = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
# Top-1 right 7 times; the true class is 2nd (id 3), 3rd (id 8), 4th (id 9).
TOP_CLASSES = [
    [0, 1, 2, 3, 4],
    [1, 0, 2, 3, 4],
    [2, 0, 1, 3, 4],
    [2, 3, 0, 1, 4],
    [4, 0, 1, 2, 3],
    [0, 4, 3, 2, 1],
    [1, 4, 3, 2, 0],
    [2, 4, 3, 1, 0],
    [2, 4, 3, 1, 0],
    [0, 1, 2, 4, 3],
]


def prediction(labels, classes):
    scores = tuple(1.0 / (r + 1) for r in range(len(classes)))
    return predictions.Prediction("x", tuple(labels), tuple(classes), scores)


def class_rows(correct, count):
    """per_class.csv rows of the given counts (names "c<i>")."""
    return [
        files.ClassRow(i, f"c{i}", right, n, right / n if n else None)
        for i, (right, n) in enumerate(zip(correct, count))
    ]


class SummariesTest(tf.test.TestCase, parameterized.TestCase):
    def test_topk_accuracies_exact(self):
        records = [
            prediction([label], c) for label, c in zip(LABELS, TOP_CLASSES)
        ]
        self.assertAllClose(
            tallies.topk_accuracies(records),
            [0.7, 0.8, 0.9, 1.0, 1.0],
        )

    @parameterized.named_parameters(
        ("any_label_counts", [[1, 2]], [[2, 0, 1]], [1.0, 1.0, 1.0]),
        ("unlabeled_left_out", [[], [0]], [[1, 0], [1, 0]], [0.0, 1.0]),
        ("shortest_line_bounds_k", [[0], [0]], [[1, 0, 2], [0, 1]], [0.5, 1.0]),
        ("no_labels_no_curve", [[]], [[0, 1]], []),
    )
    def test_topk_accuracies_cases(self, labels, classes, expected):
        records = [prediction(label, c) for label, c in zip(labels, classes)]
        self.assertAllClose(tallies.topk_accuracies(records), expected)

    def test_confused_pairs_ranked_by_count_then_class(self):
        records = [
            prediction([label], c) for label, c in zip(LABELS, TOP_CLASSES)
        ]
        self.assertEqual(
            tallies.confused_pairs(records), [(3, 2, 2), (4, 0, 1)]
        )

    def test_wrong_predictions_most_confident_first(self):
        a = predictions.Prediction("a", (0,), (1, 0), (0.6, 0.4))
        b = predictions.Prediction("b", (0,), (1, 0), (0.9, 0.1))
        c = predictions.Prediction("c", (0,), (0, 1), (0.9, 0.1))
        wrong = tallies.wrong_predictions([a, b, c], limit=5)
        self.assertEqual([p.id for p in wrong], ["b", "a"])

    def test_imagenet_names_for_1000_classes(self):
        rows = [files.ClassRow(i, "n0", 1, 1, 1.0) for i in range(1000)]
        self.assertEqual(tallies.class_namer(rows)(281), "tabby, tabby cat")
        self.assertEqual(len(imagenet.class_names()), 1000)

    def test_names_from_csv_else_index(self):
        rows = [files.ClassRow(0, "cat", 1, 1, 1.0)]
        name = tallies.class_namer(rows)
        self.assertEqual((name(0), name(7)), ("cat", "7"))

    def test_short_name(self):
        self.assertEqual(tallies.short_name("tabby, tabby cat"), "tabby")


class ClassesByErrorsTest(tf.test.TestCase):
    # Correct / count: 0/1, 1/1, 0/1, 0/2, 2/3, 0/0, 3/5. Errors 1, 0, 1,
    # 2, 1, -, 2: class 3 (0%) before class 6 (60%) at two errors; then
    # classes 0, 2 (0%) before 4 (67%) at one; 1 and 5 have no error.
    CORRECT = [0, 1, 0, 0, 2, 0, 3]
    COUNT = [1, 1, 1, 2, 3, 0, 5]

    def test_ranked_by_errors_then_top1_then_index(self):
        rows = class_rows(self.CORRECT, self.COUNT)
        worst = tallies.classes_by_errors(rows)
        self.assertEqual([row.index for row in worst], [3, 6, 0, 2, 4])
        self.assertEqual([row.errors for row in worst], [2, 2, 1, 1, 1])
        self.assertEqual(
            [row.index for row in tallies.classes_by_errors(rows, limit=2)],
            [3, 6],
        )
        # Wilson 95% of 0/2 by hand: z^2 = 3.8415, center = half =
        # (z^2 / 4) / (1 + z^2 / 2) = 0.3288: (0, 0.6576).
        self.assertAllClose(worst[0].interval95, [0.0, 0.65762], atol=1e-4)
        self.assertEqual(worst[1].interval95, results.wilson_interval(3, 5))

    def test_no_error_lists_nothing(self):
        rows = class_rows([1, 2, 0], [1, 2, 0])
        self.assertEqual(tallies.classes_by_errors(rows), [])

    def test_too_few_images_to_rank(self):
        # Classes with images hold 1, 1, 1, 2, 3, 5: median 1.5 < 10.
        rows = class_rows(self.CORRECT, self.COUNT)
        self.assertEqual(tallies.median_count(rows), 1.5)
        self.assertTrue(tallies.too_few_to_rank(rows))
        # 50 images a class (ImageNet's validation set): rankable.
        rows = class_rows([40, 50, 10], [50, 50, 50])
        self.assertEqual(tallies.median_count(rows), 50)
        self.assertFalse(tallies.too_few_to_rank(rows))
        self.assertEqual(tallies.median_count([]), 0)


if __name__ == "__main__":
    tf.test.main()
