"""report.html of a robustness command: the suite's table and ImageNet-C's
corruption x severity heatmap, from robustness.json
(`tf_topk.runs.robustness`), on the page of `tf_topk.runs.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tf_topk.runs import markup, plots, report


def _percent(fraction: float | None) -> str:
    return "" if fraction is None else f"{100 * fraction:.2f}%"


def render(content: Mapping[str, Any]) -> tuple[str, dict[str, bytes]]:
    """The page of a robustness command (robustness.json): the suite's
    table and ImageNet-C's corruption x severity heatmap.

    Returns:
        (html, figures), as `tf_topk.runs.report.render`.
    """
    figures: dict[str, bytes] = {}
    sections = []
    if content.get("datasets"):
        rows = [
            (
                e["dataset"],
                e["status"],
                e["num_examples"],
                _percent(e["top1"]),
                _percent(e["top5"]),
                _percent(e["top1_drop_from_clean"]),
                _percent(e.get("top1_drop_from_clean200")),
            )
            for e in content["datasets"]
        ]
        header = ["dataset", "status", "images", "top-1", "top-5"]
        header += ["drop from clean", "drop from clean-200"]
        sections.append(markup.heading("Datasets") + markup.table(header, rows))
    if content.get("cells"):
        sections.append(_imagenet_c_section(content, figures))
    if content.get("failed_runs"):
        sections.append(
            markup.heading("Failed runs")
            + markup.mapping(content["failed_runs"])
        )
    title = f"robustness of {content.get('model')}"
    return report.page(title, "robustness.json", sections), figures


def _imagenet_c_section(content, figures) -> str:
    errors: dict[str, dict[int, float]] = {}
    for cell in content["cells"]:
        errors.setdefault(cell["corruption"], {})[cell["severity"]] = 100 * (
            1.0 - cell["top1"]
        )
    severities = sorted({cell["severity"] for cell in content["cells"]})
    names = list(errors)
    figures["imagenet_c_heatmap"] = plots.heatmap(
        names,
        [f"severity {s}" for s in severities],
        [[errors[c].get(s) for s in severities] for c in names],
        title="ImageNet-C top-1 error (%)",
        colorbar_label="top-1 error (%)",
    )
    ce = content.get("corruption_errors") or {}
    rows = [(c, _percent(ce.get(c))) for c in names]
    summary = f"mCE {_percent(content.get('mce'))}"
    if content.get("relative_mce") is not None:
        summary += f", relative mCE {_percent(content['relative_mce'])}"
    return (
        markup.heading("ImageNet-C")
        + markup.plot(figures["imagenet_c_heatmap"], "ImageNet-C heatmap")
        + f"<p>{markup.escape(summary)} (AlexNet = 100%; the extra "
        "corruptions are not averaged in)</p>"
        + markup.table(["corruption", "CE"], rows)
    )
