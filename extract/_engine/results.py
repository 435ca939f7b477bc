"""Kept for modules that still import the result types from here; they live in `extract.results`."""

from __future__ import annotations

from extract.results import Attempt, Result, Usage

__all__ = ["Attempt", "Result", "Usage"]
