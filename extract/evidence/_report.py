"""One self-contained HTML page to review a batch: per document its text with the spans highlighted and its
fields, documents ordered by their lowest confidence (least sure first), a filter for documents with a
value aligned `none`, and re-sorting by id or confidence.

No network reference: inline styles and one inline script (only for sorting and filtering; the page reads
fine without it). Every text is escaped. Pure.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

from extract.evidence._collect import FieldEvidence
from extract.evidence._html import evidence_html

__all__ = ["batch_report", "evidence_from_json"]

_SCRIPT = """
function sortDocs(key){var m=document.getElementById('docs');var s=[].slice.call(m.children);
s.sort(function(a,b){var x=a.dataset[key],y=b.dataset[key];
return key==='id'?(x<y?-1:x>y?1:0):(parseFloat(x)-parseFloat(y));});s.forEach(function(e){m.appendChild(e);});}
function filterNone(on){[].forEach.call(document.getElementById('docs').children,function(e){
e.style.display=(!on||e.dataset.none==='1')?'':'none';});}
"""


def evidence_from_json(evidence: Mapping[str, Any]) -> dict[str, FieldEvidence]:
    """An output line's "evidence" object back as FieldEvidence (malformed entries are skipped)."""
    out: dict[str, FieldEvidence] = {}
    for path, entry in evidence.items():
        if not isinstance(entry, Mapping):
            continue
        spans = [
            (int(s[0]), int(s[1]))
            for s in entry.get("spans") or []
            if isinstance(s, list) and len(s) == 2 and all(isinstance(x, int) for x in s)
        ]
        alignment = entry.get("alignment")
        if alignment not in ("exact", "normalised", "fuzzy", "none"):
            continue
        confidence = entry.get("confidence")
        score = entry.get("score")
        out[str(path)] = FieldEvidence(
            str(path),
            entry.get("value"),
            spans,
            alignment,
            float(confidence) if isinstance(confidence, (int, float)) else None,
            float(score) if isinstance(score, (int, float)) else 0.0,
            bool(entry.get("derived")),
        )
    return out


def _lowest(evidence: Mapping[str, FieldEvidence]) -> float:
    scores = [ev.confidence for ev in evidence.values() if ev.confidence is not None]
    return min(scores) if scores else math.inf


def batch_report(documents: Iterable[tuple[str, str, Mapping[str, FieldEvidence]]]) -> str:
    """(id, text, evidence) per document -> the page."""
    docs = sorted(documents, key=lambda d: (_lowest(d[2]), d[0]))
    sections = []
    flagged = 0
    for doc_id, text, evidence in docs:
        lowest = _lowest(evidence)
        has_none = any(ev.alignment == "none" and not ev.derived for ev in evidence.values())
        flagged += has_none
        shown = "no logprobs" if lowest == math.inf else f"{lowest:.2f}"
        sections.append(
            f'<section data-id="{html.escape(doc_id, quote=True)}" '
            f'data-conf="{lowest if lowest != math.inf else 2}" data-none="{int(has_none)}" '
            'style="border-top:2px solid #888;margin-top:12px">'
            f"<h3>{html.escape(doc_id)} <small>(lowest confidence {shown}"
            f"{', a value not in the text' if has_none else ''})</small></h3>"
            f"{evidence_html(text, evidence)}</section>"
        )
    controls = (
        "<p>Sort: <button onclick=\"sortDocs('conf')\">lowest confidence first</button> "
        "<button onclick=\"sortDocs('id')\">by id</button> "
        '<label><input type="checkbox" onchange="filterNone(this.checked)"> only documents with a value '
        f"aligned <code>none</code> ({flagged})</label></p>"
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>extract evidence report</title>'
        f'<script>{_SCRIPT}</script></head><body style="font-family:sans-serif">'
        f'<h1>Evidence for {len(docs)} document(s)</h1>{controls}<div id="docs">{"".join(sections)}</div>'
        "</body></html>"
    )
