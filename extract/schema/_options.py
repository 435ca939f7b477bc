"""The transform's knobs and its report: Options in, Relaxations out."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Options", "Relaxation", "TooBig"]


@dataclass(frozen=True, slots=True)
class Relaxation:
    """One check that moved from the wire schema to the client: where, which keyword, and why."""

    path: str
    keyword: str
    reason: str


@dataclass(frozen=True, slots=True)
class Options:
    """How hard the transform squeezes: later compile attempts shrink descriptions and recursion."""

    descriptions: str = "full"  # full | short | hints | none
    unroll: int = 3
    max_enum: int | None = None
    max_nodes: int = 20_000


class TooBig(Exception):
    """The expansion grew past the node budget (deep diamonds or wide recursion): no strict form."""
