"""A Result as HTML for notebooks: the source text with every span highlighted and labelled by its field,
then a table of fields (value, alignment, confidence; low confidence and `none` alignment flagged).

Self-contained: inline styles only, every text escaped, no script and no network reference. Pure.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from extract.evidence._collect import FieldEvidence
    from extract.results import Result

__all__ = ["LOW_CONFIDENCE", "evidence_html", "result_html"]

LOW_CONFIDENCE = 0.5
_MAX_TEXT = 200_000  # characters of source text shown; the rest is cut with a note
_COLOURS = ("#fde68a", "#bfdbfe", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc")


def _mark(text: str, evidence: Mapping[str, FieldEvidence]) -> str:
    """The text with non-overlapping spans wrapped in <mark> (a span inside an earlier one is skipped)."""
    spans = sorted(
        (start, end, path, index)
        for index, (path, ev) in enumerate(evidence.items())
        for start, end in ev.spans
        if end <= len(text)
    )
    out: list[str] = []
    position = 0
    for start, end, path, index in spans:
        if start < position:
            continue
        out.append(html.escape(text[position:start]))
        colour = _COLOURS[index % len(_COLOURS)]
        label = html.escape(path, quote=True)
        out.append(
            f'<mark title="{label}" style="background:{colour};padding:0 1px">{html.escape(text[start:end])}'
            f'<sub style="font-size:0.7em;color:#555"> {label}</sub></mark>'
        )
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


def _confidence(value: float | None) -> str:
    if value is None:
        return "&ndash;"
    shown = f"{value:.2f}"
    return f'<b style="color:#b91c1c">{shown} (low)</b>' if value < LOW_CONFIDENCE else shown


def evidence_html(text: str, evidence: Mapping[str, FieldEvidence]) -> str:
    shown = text[:_MAX_TEXT]
    note = (
        f"<p><i>({len(text) - _MAX_TEXT:,} more characters not shown)</i></p>"
        if len(text) > _MAX_TEXT
        else ""
    )
    rows = []
    for path, ev in evidence.items():
        alignment = html.escape(ev.alignment)
        if ev.alignment == "fuzzy":
            alignment += f" ({ev.score:.2f})"
        if ev.alignment == "none" and not ev.derived:
            alignment = f'<b style="color:#b91c1c">{alignment}</b>'
        value: Any = ev.value
        rows.append(
            f"<tr><td><code>{html.escape(path)}</code></td><td>{html.escape(str(value))}</td>"
            f"<td>{alignment}{' (derived)' if ev.derived else ''}</td><td>{_confidence(ev.confidence)}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>field</th><th>value</th><th>alignment</th><th>confidence</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    body = f'<div style="white-space:pre-wrap;font-family:monospace;border:1px solid #ddd;padding:6px">{_mark(shown, evidence)}</div>'
    return f"<div>{body}{note}{table}</div>"


def result_html(result: Result) -> str:
    head = (
        f"<p><b>Result</b> model <code>{html.escape(result.model)}</code>, mode {html.escape(result.mode)}, "
        f"{len(result.attempts)} attempt(s), {result.usage.total_tokens} tokens</p>"
    )
    if result.evidence is None or result.source is None:
        value = html.escape(repr(result.value))
        return f"<div>{head}<pre>{value}</pre><p><i>no evidence: pass evidence=True</i></p></div>"
    return f"<div>{head}{evidence_html(result.source, result.evidence)}</div>"
