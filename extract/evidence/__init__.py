"""Evidence for every field: where in the source text each value appears, and how sure the model was.

    result = ex.extract(Invoice, text, full=True, evidence=True)
    ev = result.evidence["$.items[0].description"]
    ev.value, ev.spans, ev.alignment, ev.confidence

Pure (no I/O): `collect` reads the final reply, its token logprobs and the source text. Paths are JSONPaths
over the user-shaped JSON the model wrote (property names as in the JSON Schema, aliases for pydantic).
"""

from __future__ import annotations

from extract.evidence._collect import FieldEvidence, collect, user_json
from extract.evidence._ground import FUZZY_CUTOFF, Alignment, Grounder
from extract.evidence._paths import format_path, leaves
from extract.evidence._require import Check, Grounding, Settled, Ungrounded
from extract.evidence._schema import DERIVED_KEYS, choice_width

__all__ = [
    "DERIVED_KEYS",
    "FUZZY_CUTOFF",
    "Alignment",
    "Check",
    "FieldEvidence",
    "Grounder",
    "Grounding",
    "Settled",
    "Ungrounded",
    "choice_width",
    "collect",
    "format_path",
    "leaves",
    "user_json",
]
