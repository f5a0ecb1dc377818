"""The HTML page of a run: one self-contained report.html (and TensorBoard
images).

`write(workdir)` reads what a run left (results.json, per_class.csv and,
with `--config.eval.save_predictions=True`, its predictions files) and
writes `<workdir>/report.html`: the results table with intervals and
published figures, the top-k curve for k = 1..10, the per-class top-1
distribution and the classes with the most top-1 errors (with their counts
and 95% intervals, and a note where classes hold too few images to rank),
the most confused class pairs, the tie and non-finite counts, the run's
config, versions, throughput, step latency, peak memory and out-of-memory
back-offs, and thumbnails of wrong predictions where the images are files.
What the page counts comes from `tf_topk.runs.tallies`, its plots from
`tf_topk.runs.plots`, its HTML from `tf_topk.runs.markup`.

Nothing on the page is fetched: plots and thumbnails are data URIs, the
style is inline, and a Content-Security-Policy (`CONTENT_SECURITY_POLICY`)
makes the browser refuse any other request, so a page that would leak one
fails loudly (a console error) instead of silently. Every string from the run
is HTML-escaped. The same plots go to `<workdir>/tensorboard` as images.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from tf_topk.runs import files, markup, plots, predictions, summary, tallies

SAVE_PREDICTIONS_FLAG = "--config.eval.save_predictions=True"
# Images only as data URIs, style only inline, nothing else at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
)
_FILE_SOURCES = ("files", "folder")
_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto;
  max-width: 1100px; padding: 0 20px 40px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left;
  vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right;
  font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; display: block; margin: 8px 0; }
.note { background: #fff6d8; border-left: 4px solid #e0b000;
  padding: 6px 10px; }
.grid { display: grid; gap: 12px;
  grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); }
figure { margin: 0; font-size: 12px; } figure img { max-width: 100%; }
.wrong { color: #a40000; } .true { color: #2e7d32; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
code { overflow-wrap: anywhere; }
"""


def _percent(fraction: float | None, digits: int = 2) -> str:
    return "" if fraction is None else f"{100 * fraction:.{digits}f}%"


def _needs_predictions(what: str) -> str:
    return markup.note(
        f"{what} needs the run's predictions: run it again with "
        f"{SAVE_PREDICTIONS_FLAG}."
    )


def ks_of(results: Mapping[str, Any]) -> list[int]:
    """The evaluated k of results.json (its `top{k}` keys), ascending."""
    return sorted(
        int(match.group(1))
        for key in results
        if (match := re.fullmatch(r"top(\d+)", key))
    )


def _results_section(results: Mapping[str, Any]) -> str:
    published = results.get("published") or {}
    rows = []
    for k in ks_of(results):
        accuracy = results[f"top{k}"]
        low, high = results.get(f"top{k}_interval95") or (None, None)
        reference = published.get(f"top{k}")
        difference = (
            f"{100 * (accuracy - reference):+.2f} points"
            if reference is not None and accuracy is not None
            else ""
        )
        rows.append(
            (
                k,
                _percent(accuracy),
                f"{results.get(f'top{k}_correct')} / "
                f"{results.get('num_scored')}",
                f"[{_percent(low)}, {_percent(high)}]"
                if low is not None
                else "",
                _percent(reference),
                difference,
            )
        )
    header = ["k", "accuracy", "correct / scored", "95% interval"]
    header += ["published", "difference"]
    return markup.heading("Results") + markup.table(header, rows)


def _curve_section(results, records, figures) -> str:
    title = markup.heading("Top-k accuracy, k = 1..10")
    if records is None:
        return title + _needs_predictions("The top-k curve")
    accuracies = tallies.topk_accuracies(records)
    if not accuracies:
        return title + markup.note(
            "No labeled prediction to draw the curve from."
        )
    published = {
        int(key[3:]): value
        for key, value in (results.get("published") or {}).items()
        if re.fullmatch(r"top\d+", key)
    }
    figures["topk_curve"] = plots.topk_curve(accuracies, published=published)
    ks = ["k"] + list(range(1, len(accuracies) + 1))
    return (
        title
        + markup.plot(figures["topk_curve"], "top-k accuracy curve")
        + f"<p>Over {sum(1 for p in records if p.labels)} labeled "
        "predictions.</p>"
        + markup.table(ks, [["accuracy"] + [_percent(a) for a in accuracies]])
    )


def _classes_section(rows, name, figures) -> str:
    title = markup.heading("Per-class top-1")
    scored = [row for row in rows if row.top1 is not None]
    if not scored:
        return title + markup.note(
            "No per-class counts: per_class.csv is absent or empty, and no "
            f"predictions were saved ({SAVE_PREDICTIONS_FLAG})."
        )
    figures["per_class_top1"] = plots.per_class_histogram(
        [row.top1 for row in scored]
    )
    return (
        title
        + markup.plot(figures["per_class_top1"], "per-class top-1 histogram")
        + _worst_classes(scored, name, figures)
    )


def _worst_classes(rows, name, figures) -> str:
    """The classes with the most top-1 errors: chart, table, caveat."""
    worst = tallies.classes_by_errors(rows)
    title = "Classes with top-1 errors"
    if worst:
        title = f"The {len(worst)} classes with the most top-1 errors"
    text = f"<h3>{markup.escape(title)}</h3>"
    if tallies.too_few_to_rank(rows):
        text += markup.note(
            "Too few images to rank classes: the median class holds "
            f"{tallies.median_count(rows):g} image(s), fewer than "
            f"{tallies.MIN_IMAGES_TO_RANK}. A class's top-1 on so few "
            "images is known only within the wide 95% intervals below, so "
            "the list says where the errors fell, not which classes are "
            "hardest."
        )
    if not worst:
        return text + markup.note("No class has a top-1 error.")
    figures["worst_classes"] = plots.bar_chart(
        [f"{row.index} {tallies.short_name(name(row.index))}" for row in worst],
        [row.errors for row in worst],
        title=title,
        xlabel="top-1 errors",
        value_format="{:.0f}",
    )
    table = markup.table(
        ["class", "name", "errors", "correct / count", "top-1"]
        + ["95% interval"],
        [
            (
                row.index,
                name(row.index),
                row.errors,
                f"{row.correct} / {row.count}",
                _percent(row.top1),
                f"[{_percent(row.interval95[0])}, "
                f"{_percent(row.interval95[1])}]",
            )
            for row in worst
        ],
    )
    return text + markup.plot(figures["worst_classes"], "worst classes") + table


def _pairs_section(records, name, figures) -> str:
    title = markup.heading("Most confused class pairs")
    if records is None:
        return title + _needs_predictions("The confused pairs")
    pairs = tallies.confused_pairs(records)
    if not pairs:
        return title + markup.note(
            "No top-1 error among the labeled predictions."
        )
    figures["confused_pairs"] = plots.bar_chart(
        [
            f"{tallies.short_name(name(true))} \u2192 "
            f"{tallies.short_name(name(predicted))}"
            for true, predicted, _ in pairs
        ],
        [n for _, _, n in pairs],
        title="Most confused pairs (true \u2192 predicted)",
        xlabel="top-1 errors",
        value_format="{:.0f}",
    )
    table = markup.table(
        ["true class", "predicted as", "errors"],
        [(f"{t} {name(t)}", f"{c} {name(c)}", n) for t, c, n in pairs],
    )
    return (
        title + markup.plot(figures["confused_pairs"], "confused pairs") + table
    )


def _counts_section(results: Mapping[str, Any]) -> str:
    data = results.get("data") or {}
    ties = results.get("ties") or {}
    rules = f"ties (rule: {results.get('ties_rule')})"
    rows = [
        (rules, ", ".join(f"{k}: {n}" for k, n in ties.items())),
        ("non-finite predictions", markup.value(results.get("nonfinite"))),
        ("unlabeled examples left out", markup.value(results.get("unlabeled"))),
        ("corrupt files skipped", markup.value(data.get("num_skipped"))),
        ("resumed from", markup.value(results.get("resumed_from"))),
    ]
    text = markup.heading("Ties and non-finite predictions")
    text += markup.table(None, rows)
    skipped = data.get("skipped") or []
    if skipped:
        text += "<p>Skipped files:</p>" + markup.table(
            ["file"], [(s,) for s in skipped]
        )
    for cause in results.get("diagnostics") or []:
        text += markup.note(f"Likely cause of a shortfall: {cause}")
    return text


def _speed(results: Mapping[str, Any]) -> str:
    """The throughput record, the batch size, the step's latency and the
    peak memory in words ("n/a" where a run recorded none), and a note
    naming the out-of-memory back-offs."""
    throughput = dict(results.get("throughput") or {})
    p50 = throughput.pop("latency_ms_p50", None)
    p95 = throughput.pop("latency_ms_p95", None)
    memory = results.get("memory") or {}
    batch_size = results.get("batch_size")
    throughput["wall_time_s"] = results.get("wall_time_s")
    throughput["batch_size"] = (
        summary.NOT_AVAILABLE if batch_size is None else batch_size
    )
    throughput["step latency"] = summary.describe_latency(p50, p95)
    throughput["peak memory"] = summary.describe_memory(
        memory.get("peak_host_bytes"), memory.get("peak_device_bytes")
    )
    text = markup.mapping(throughput)
    backoffs = results.get("oom_backoffs") or []
    if backoffs:
        sentence = summary.describe_backoffs(backoffs, batch_size)
        text += markup.note(sentence.capitalize() + ".")
    return text


def _run_section(results: Mapping[str, Any]) -> str:
    model = results.get("model")
    parts = [markup.heading("Run"), "<h3>Model</h3>"]
    if isinstance(model, Mapping):
        parts.append(markup.mapping(model))
    else:
        parts.append(f"<p>{markup.escape(model)}</p>")
    for member in results.get("members") or []:
        parts.append(markup.mapping(member))
    parts += ["<h3>Data</h3>", markup.mapping(results.get("data"))]
    parts.append("<h3>Preprocessing</h3>")
    parts += [markup.mapping(p) for p in results.get("preprocessing") or []]
    parts += ["<h3>Throughput, latency and memory</h3>", _speed(results)]
    parts += [
        "<h3>Versions and devices</h3>",
        markup.mapping(results.get("versions")),
    ]
    parts.append(
        markup.mapping(
            {
                "device": results.get("device"),
                "devices": results.get("devices"),
                "distribution": results.get("distribution"),
            }
        )
    )
    config = json.dumps(results.get("config"), indent=2, sort_keys=True)
    parts.append(
        "<details open><summary>Config</summary>"
        f"<pre>{markup.escape(config)}</pre></details>"
    )
    return "".join(parts)


def _figure(p: predictions.Prediction, path: str, name) -> str:
    true = ", ".join(f"{c} {name(c)}" for c in p.labels)
    score = f" ({p.top_scores[0]:.2f})" if p.top_scores else ""
    predicted = f"{p.top_classes[0]} {name(p.top_classes[0])}{score}"
    uri = markup.data_uri(plots.thumbnail(path), "image/jpeg")
    return (
        f'<figure><img alt="{markup.escape(p.id)}" src="{uri}"><figcaption>'
        f'<div class="true">true: {markup.escape(true)}</div>'
        f'<div class="wrong">predicted: {markup.escape(predicted)}</div>'
        f"<code>{markup.escape(p.id)}</code></figcaption></figure>"
    )


def _thumbnails_section(results, records, name, limit: int) -> str:
    title = markup.heading("Wrong predictions")
    data = results.get("data") or {}
    if data.get("source") not in _FILE_SOURCES or not data.get("path"):
        return title + markup.note(
            "Thumbnails need image files: the data source is "
            f"{data.get('source')!r}, not one of {list(_FILE_SOURCES)}."
        )
    if records is None:
        return title + _needs_predictions("Thumbnails of wrong predictions")
    figures = []
    missing = []
    for p in tallies.wrong_predictions(records, limit=limit):
        path = os.path.join(data["path"], p.id)
        try:
            figures.append(_figure(p, path, name))
        except (tf.errors.OpError, ValueError):
            missing.append(p.id)
    text = title + (
        f"<p>The {len(figures)} most confident top-1 errors.</p>"
        f'<div class="grid">{"".join(figures)}</div>'
    )
    if missing:
        text += markup.note(
            f"{len(missing)} image(s) could not be read under "
            f"{data['path']}: {', '.join(missing[:5])}"
        )
    return text


def _title(results: Mapping[str, Any]) -> str:
    model = results.get("model")
    model_name = model.get("name") if isinstance(model, Mapping) else model
    data = results.get("data") or {}
    where = data.get("name") or data.get("path") or data.get("source")
    split = f" ({data['split']})" if data.get("split") else ""
    return f"{model_name} on {where}{split}"


def _subtitle(results: Mapping[str, Any]) -> str:
    data = results.get("data") or {}
    parts = [f"{results.get('num_examples')} examples"]
    parts.append(f"source: {data.get('source')}")
    if results.get("wall_time_s") is not None:
        parts.append(f"{results['wall_time_s']:.1f} s")
    return ", ".join(parts)


def render(
    results: Mapping[str, Any],
    per_class: Sequence[files.ClassRow],
    records: Sequence[predictions.Prediction] | None,
    *,
    max_thumbnails: int = 24,
) -> tuple[str, dict[str, bytes]]:
    """The page's HTML and its plots as {name: PNG bytes}, from a run's files.

    Args:
        results: results.json as a dict.
        per_class: per_class.csv's rows (may be empty).
        records: the saved predictions, one per example, or None when
            none were saved.
        max_thumbnails: at most this many thumbnails of wrong predictions.

    Returns:
        (html, figures): the page, and the plots it embeds by name.
    """
    name = tallies.class_namer(per_class)
    rows = per_class
    if not any(row.top1 is not None for row in rows) and records:
        rows = tallies.per_class_from_predictions(records)
    figures: dict[str, bytes] = {}
    title = _title(results)
    sections = [
        _results_section(results),
        _curve_section(results, records, figures),
        _classes_section(rows, name, figures),
        _pairs_section(records, name, figures),
        _counts_section(results),
        _thumbnails_section(results, records, name, max_thumbnails),
        _run_section(results),
    ]
    return page(title, _subtitle(results), sections), figures


def page(title: str, subtitle: str, sections: Sequence[str]) -> str:
    """The self-contained page around its sections (HTML, each starting
    with a `markup.heading`), with their contents."""
    contents = " \u00b7 ".join(
        f'<a href="#{anchor}">{text}</a>'
        for anchor, text in re.findall(
            r'<h2 id="([^"]+)">([^<]*)</h2>', "".join(sections)
        )
    )
    body = [
        f"<h1>tf_topk report: {markup.escape(title)}</h1>",
        f"<p>{markup.escape(subtitle)}</p><nav>{contents}</nav>",
        *sections,
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        '<meta http-equiv="Content-Security-Policy" '
        f'content="{CONTENT_SECURITY_POLICY}">'
        f"<title>{markup.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write(workdir: str, *, max_thumbnails: int = 24) -> str:
    """Writes `<workdir>/report.html` and the plots to TensorBoard.

    A robustness command's workdir (robustness.json, no results.json) gets
    its page: the suite's table and ImageNet-C's heatmap
    (`tf_topk.runs.robustness_page`).

    Args:
        workdir: a finished run's folder (holds results.json).
        max_thumbnails: at most this many thumbnails of wrong predictions
            (0 for none).

    Returns:
        The path of report.html.

    Raises:
        FileNotFoundError: `workdir` has neither results.json nor
            robustness.json.
        ValueError: `max_thumbnails` is negative, or a predictions line is
            malformed.
    """
    if not isinstance(max_thumbnails, int) or max_thumbnails < 0:
        raise ValueError(
            "Argument `max_thumbnails` must be a non-negative integer. "
            f"Received: max_thumbnails={max_thumbnails!r}"
        )
    robustness = None
    if not tf.io.gfile.exists(os.path.join(workdir, files.RESULTS_FILE)):
        robustness = files.read_robustness(workdir)
    if robustness is not None:
        # Imported here: that page builds on this module's.
        from tf_topk.runs import robustness_page

        path = os.path.join(workdir, files.REPORT_FILE)
        files.write_atomic(path, robustness_page.render(robustness)[0])
        return path
    records = None
    if predictions.saved(workdir):
        records = predictions.load(workdir).records()
    html, figures = render(
        files.read_results(workdir),
        files.read_per_class(workdir),
        records,
        max_thumbnails=max_thumbnails,
    )
    path = os.path.join(workdir, files.REPORT_FILE)
    files.write_atomic(path, html)
    if figures:
        plots.write_tensorboard_images(
            figures, os.path.join(workdir, files.TENSORBOARD_DIR)
        )
    return path
