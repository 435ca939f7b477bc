"""From a partial wire value to a partial value of the user's type.

The compiler may have relaxed the user's shape for the wire (maps as entry lists, optional wrappers,
wrapped roots, JSON-in-string for `Any`); the codec that reads a whole reply back is lenient and reads a
partial one the same way, because a partial here holds only complete scalars, finished array items and
open objects (see `extract.streaming._json`). What is left to do is choosing the user's type: a pydantic
model's partial twin (`_twin`), or the plain decoded JSON for a JSON Schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from extract.streaming._twin import partial_twin

if TYPE_CHECKING:
    from extract.schema import CompiledSchema

__all__ = ["PartialDecoder"]


class PartialDecoder:
    """Turns wire partials into user partials for one compiled schema; None when one cannot be shown."""

    __slots__ = ("_compiled", "_twin")

    def __init__(self, compiled: CompiledSchema) -> None:
        self._compiled = compiled
        tp = compiled._source.pydantic_type
        self._twin: type[BaseModel] | None = (
            partial_twin(tp) if isinstance(tp, type) and issubclass(tp, BaseModel) else None
        )

    def decode(self, wire: Any) -> Any:
        """The user-shaped partial for a wire partial (a twin instance for a model), or None."""
        if wire is None:
            return None
        value = self._compiled.decode(wire)
        twin = self._twin
        if twin is None:
            return value
        if not isinstance(value, dict):
            return None
        try:
            return twin.model_validate(value)
        except ValidationError:
            return None  # a partial the twin cannot hold (a wrong type so far): shown at the next boundary
