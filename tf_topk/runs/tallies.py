"""What the HTML report counts from a run's predictions and per-class rows.

Small functions over `tf_topk.runs.predictions.Prediction` records and
per_class.csv rows (`tf_topk.runs.files.ClassRow`): top-k for k = 1..10,
the most confused class pairs, per-class top-1 when no per_class.csv was
written, the most confident errors, the classes with the most errors (and
whether classes hold enough images to rank them), and class names in words.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from tf_topk import imagenet
from tf_topk.runs import files, predictions

MAX_K = 10
NUM_PAIRS = 20
# Classes listed as those with the most errors.
NUM_WORST = 20
# Below this many images a class's top-1 is known only within a wide
# interval (at 10 images, 5 right: 24% to 76%), so classes are not ranked
# by accuracy; most ImageNet-style sets hold 10 (V2) to 50 per class.
MIN_IMAGES_TO_RANK = 10


def topk_accuracies(
    records: Iterable[predictions.Prediction], *, max_k: int = MAX_K
) -> list[float]:
    """Top-k accuracy for k = 1..max_k over the labeled predictions.

    An example is correct at k when any of its labels is among its k best
    classes (one label: the usual top-k). Unlabeled examples are left out,
    as in results.json. The list stops at the fewest classes a line holds.
    """
    labeled = [p for p in records if p.labels]
    if not labeled:
        return []
    max_k = min(max_k, min(len(p.top_classes) for p in labeled))
    hits = [0] * max_k
    for p in labeled:
        labels = set(p.labels)
        for rank, c in enumerate(p.top_classes[:max_k]):
            if c in labels:
                for k in range(rank, max_k):
                    hits[k] += 1
                break
    return [h / len(labeled) for h in hits]


def confused_pairs(
    records: Iterable[predictions.Prediction], *, limit: int = NUM_PAIRS
) -> list[tuple[int, int, int]]:
    """The most frequent (true class, predicted class, count) top-1 errors.

    A wrong example counts once for each of its true labels; ties in count
    are ordered by class index, so the list is deterministic.
    """
    counts: Counter[tuple[int, int]] = Counter()
    for p in records:
        if p.labels and p.top_classes and p.top_classes[0] not in p.labels:
            for label in p.labels:
                counts[(label, p.top_classes[0])] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(t, c, n) for (t, c), n in ranked[:limit]]


def per_class_from_predictions(
    records: Iterable[predictions.Prediction],
) -> list[files.ClassRow]:
    """Per-class top-1 rows computed from predictions (no per_class.csv)."""
    correct: Counter[int] = Counter()
    count: Counter[int] = Counter()
    for p in records:
        for label in p.labels:
            count[label] += 1
            correct[label] += bool(p.top_classes) and p.top_classes[0] in (
                p.labels
            )
    return [
        files.ClassRow(c, "", correct[c], count[c], correct[c] / count[c])
        for c in sorted(count)
    ]


def class_namer(rows: Sequence[files.ClassRow]) -> Callable[[int], str]:
    """Class index -> a name in words.

    ImageNet's names when per_class.csv has 1000 rows, else its
    `class_name` column, else the index itself.
    """
    if len(rows) == imagenet.NUM_CLASSES:
        names = imagenet.class_names()
        return lambda c: names[c] if 0 <= c < len(names) else str(c)
    by_index = {row.index: row.name for row in rows if row.name}
    return lambda c: by_index.get(c, str(c))


def wrong_predictions(
    records: Iterable[predictions.Prediction], *, limit: int
) -> list[predictions.Prediction]:
    """The `limit` most confident top-1 errors (ties by id)."""
    wrong = [
        p
        for p in records
        if p.labels and p.top_classes and p.top_classes[0] not in p.labels
    ]
    wrong.sort(key=lambda p: (-p.top_scores[0] if p.top_scores else 0, p.id))
    return wrong[:limit]


def classes_by_errors(
    rows: Iterable[files.ClassRow], *, limit: int = NUM_WORST
) -> list[files.ClassRow]:
    """The `limit` classes with the most top-1 errors, most first.

    A count of errors ranks classes of one image or of fifty alike, and
    never lists a class it got right (a ranking by top-1 lists the first
    classes at 0% of one image each, as empty bars). Equal counts: the
    lower top-1 first, then the lower index.
    """
    wrong = [row for row in rows if row.count and row.errors > 0]
    wrong.sort(
        key=lambda row: (-row.errors, row.correct / row.count, row.index)
    )
    return wrong[:limit]


def median_count(rows: Iterable[files.ClassRow]) -> float:
    """The median number of images of the classes with images (0: none)."""
    counts = [row.count for row in rows if row.count]
    return statistics.median(counts) if counts else 0


def too_few_to_rank(rows: Iterable[files.ClassRow]) -> bool:
    """Whether the median class (of those with images) holds fewer than
    `MIN_IMAGES_TO_RANK` images: too few to rank classes by accuracy."""
    return median_count(rows) < MIN_IMAGES_TO_RANK


def short_name(name: str) -> str:
    """The first of a class's synonyms: 'tabby, tabby cat' -> 'tabby'."""
    return name.split(",")[0].strip() or name
