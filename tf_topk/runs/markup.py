"""The HTML building blocks of report.html: escaped text, headings, tables,
notes and embedded images.

Every string from a run goes through `escape`; images are data URIs
(`data_uri`), so the page fetches nothing (see
`tf_topk.runs.report.CONTENT_SECURITY_POLICY`).

>>> table(None, [(1, "70.00%")])
'<table><tr><td class="num">1</td><td>70.00%</td></tr></table>'
>>> escape("<b>net</b> & co")
'&lt;b&gt;net&lt;/b&gt; &amp; co'
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def escape(value: Any) -> str:
    """`str(value)` safe inside HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def data_uri(data: bytes, mime: str) -> str:
    """A base64 data URI: an image embedded in the page."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def heading(title: str) -> str:
    """An <h2> with an anchor the page's contents link to."""
    anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return f'<h2 id="{anchor}">{escape(title)}</h2>'


def table(header: Sequence[Any] | None, rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; numbers are right-aligned, every cell escaped."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header or ())
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{escape(v)}</td>'
            if isinstance(v, (int, float))
            else f"<td>{escape(v)}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    head = f"<tr>{head}</tr>" if head else ""
    return f"<table>{head}{''.join(body)}</table>"


def plot(png: bytes, alt: str) -> str:
    """A PNG plot embedded as a data URI."""
    uri = data_uri(png, "image/png")
    return f'<img class="plot" alt="{escape(alt)}" src="{uri}">'


def note(text: str) -> str:
    """A highlighted paragraph: a caveat or what is missing and why."""
    return f'<p class="note">{escape(text)}</p>'


def value(entry: Any) -> str:
    """A record's value as text: JSON for a dict or list, "" for None."""
    if isinstance(entry, (dict, list)):
        return json.dumps(entry, sort_keys=True)
    return "" if entry is None else str(entry)


def mapping(record: Mapping[str, Any] | None) -> str:
    """A two-column table of a record's keys and values ("" if empty)."""
    if not record:
        return ""
    return table(None, [(k, value(v)) for k, v in record.items()])
