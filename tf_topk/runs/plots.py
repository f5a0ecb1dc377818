"""The report's images: plots (matplotlib, Agg, no display) as PNG bytes,
thumbnails of examples as JPEG bytes, and the plots' TensorBoard copy.

Each plot function takes plain numbers and names and returns the PNG bytes,
so the same image goes into report.html (as a data URI) and into TensorBoard
(`write_tensorboard_images`, decoded to a tensor). Figures are closed after
rendering: a report draws a handful of them and must not accumulate pyplot
state.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib
import tensorflow as tf

matplotlib.use("Agg")

from matplotlib import figure, ticker  # noqa: E402 (after the backend)

# One figure width for all plots, so they line up on the page.
WIDTH_IN = 8.0
DPI = 100
THUMBNAIL_SIZE = 160
_BLUE = "#3465a4"
_ORANGE = "#ce5c00"


def _png(fig: figure.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _short(name: str, width: int) -> str:
    return textwrap.shorten(name, width=width, placeholder="...")


def topk_curve(
    accuracies: Sequence[float],
    *,
    published: dict[int, float] | None = None,
) -> bytes:
    """Top-k accuracy against k = 1..len(accuracies), as a PNG.

    Args:
        accuracies: entry i is the top-(i + 1) accuracy, a fraction.
        published: {k: fraction} marked as points (e.g. {1: 0.749}).

    Returns:
        The PNG bytes.
    """
    if not accuracies:
        raise ValueError(
            "Argument `accuracies` must hold at least the top-1 accuracy. "
            f"Received: accuracies={list(accuracies)!r}"
        )
    ks = list(range(1, len(accuracies) + 1))
    percent = [100 * a for a in accuracies]
    fig = figure.Figure(figsize=(WIDTH_IN, 3.6))
    axes = fig.subplots()
    axes.plot(ks, percent, marker="o", color=_BLUE, label="this run")
    for k, value in zip(ks, percent):
        axes.annotate(
            f"{value:.1f}",
            (k, value),
            textcoords="offset points",
            xytext=(0, -14),
            ha="center",
            fontsize=8,
        )
    marks = {k: v for k, v in (published or {}).items() if v is not None}
    if marks:
        axes.scatter(
            list(marks),
            [100 * v for v in marks.values()],
            marker="x",
            s=60,
            color=_ORANGE,
            label="published",
            zorder=3,
        )
    axes.set_xticks(ks)
    axes.set_xlabel("k")
    axes.set_ylabel("top-k accuracy (%)")
    low = min(percent + [100 * v for v in marks.values()])
    axes.set_ylim(max(0.0, low - 8), 101)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title("Top-k accuracy")
    return _png(fig)


def per_class_histogram(top1: Sequence[float]) -> bytes:
    """Histogram of the per-class top-1 accuracies (fractions), as a PNG."""
    fig = figure.Figure(figsize=(WIDTH_IN, 3.2))
    axes = fig.subplots()
    values = [100 * v for v in top1]
    axes.hist(values, bins=[5 * i for i in range(21)], color=_BLUE)
    if values:
        mean = sum(values) / len(values)
        axes.axvline(mean, color=_ORANGE, linestyle="--")
        axes.annotate(
            f"mean of classes {mean:.1f}%",
            (mean, 1),
            xycoords=("data", "axes fraction"),
            xytext=(-4, -12),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color=_ORANGE,
        )
    axes.set_xlim(0, 100)
    axes.set_xlabel("top-1 accuracy of a class (%)")
    axes.set_ylabel("classes")
    axes.set_title(f"Per-class top-1 ({len(values)} classes with examples)")
    axes.grid(alpha=0.3, axis="y")
    return _png(fig)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    value_format: str = "{:.1f}",
    max_value: float | None = None,
) -> bytes:
    """Horizontal bars, the first label on top (e.g. the worst classes).

    Args:
        labels: one label per bar; long labels are shortened.
        values: the bar lengths.
        title: the figure title.
        xlabel: the value axis label.
        value_format: format of the number written at each bar's end.
        max_value: the end of the value axis (e.g. 100 for percentages);
            default: from the largest value.

    Returns:
        The PNG bytes.
    """
    if len(labels) != len(values):
        raise ValueError(
            "Arguments `labels` and `values` must have the same length. "
            f"Received: {len(labels)} labels and {len(values)} values"
        )
    height = 1.0 + 0.28 * max(len(labels), 1)
    fig = figure.Figure(figsize=(WIDTH_IN, height))
    axes = fig.subplots()
    positions = list(range(len(labels)))
    axes.barh(positions, values, color=_BLUE)
    axes.set_yticks(positions, [_short(label, 48) for label in labels])
    axes.tick_params(axis="y", labelsize=8)
    axes.invert_yaxis()
    top = max(values, default=0) or 1
    if max_value is not None:
        axes.set_xlim(0, max_value)
    else:
        if all(float(v).is_integer() for v in values):  # Counts: whole ticks.
            axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axes.set_xlim(0, top * 1.15)
    for position, value in zip(positions, values):
        axes.annotate(
            value_format.format(value),
            (value, position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.grid(alpha=0.3, axis="x")
    return _png(fig)


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str,
    colorbar_label: str,
) -> bytes:
    """A table of values as coloured cells, each written in its cell (e.g.
    ImageNet-C's top-1 error per corruption and severity).

    Args:
        rows: the row labels, the first on top.
        columns: the column labels.
        values: one sequence per row, one value per column, in [0, 100];
            None leaves the cell blank (not evaluated).
        title: the figure title.
        colorbar_label: what the colours measure.

    Returns:
        The PNG bytes.
    """
    if len(values) != len(rows) or any(len(v) != len(columns) for v in values):
        raise ValueError(
            "Argument `values` must hold one value per row and column. "
            f"Received: {len(values)} rows for {len(rows)} row labels and "
            f"{len(columns)} columns"
        )
    grid = [
        [float("nan") if v is None else float(v) for v in r] for r in values
    ]
    height = 1.2 + 0.35 * max(len(rows), 1)
    fig = figure.Figure(figsize=(WIDTH_IN * 0.75, height))
    axes = fig.subplots()
    image = axes.imshow(grid, cmap="viridis_r", vmin=0, vmax=100, aspect="auto")
    axes.set_xticks(range(len(columns)), list(columns))
    axes.set_yticks(range(len(rows)), [_short(r, 32) for r in rows])
    axes.tick_params(labelsize=8)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if value is not None:
                axes.text(
                    j,
                    i,
                    f"{value:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 50 else "black",
                )
    fig.colorbar(image, ax=axes, label=colorbar_label)
    axes.set_title(title)
    return _png(fig)


def thumbnail(path: str, *, size: int = THUMBNAIL_SIZE) -> bytes:
    """JPEG bytes of the image at `path`, its longer side at most `size`."""
    image = tf.io.decode_image(
        tf.io.read_file(path), channels=3, expand_animations=False
    )
    if max(image.shape[0], image.shape[1]) > size:  # Never enlarged.
        resized = tf.image.resize(
            image, (size, size), preserve_aspect_ratio=True, antialias=True
        )
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return tf.io.encode_jpeg(image, quality=85).numpy()


def write_tensorboard_images(
    figures: Mapping[str, bytes], logdir: str, *, step: int = 0
) -> None:
    """Writes each PNG of `figures` as a TensorBoard image named by its key."""
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for name, png in figures.items():
            image = tf.image.decode_png(png, channels=3)
            tf.summary.image(f"report/{name}", image[tf.newaxis], step=step)
    writer.close()
