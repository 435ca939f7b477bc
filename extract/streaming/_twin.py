"""Partial twins of pydantic models: the same fields, every one optional (default None), recursively.

A twin keeps each field's type (nested models replaced by their twins, inside lists, dicts, unions and
Optional too) and drops everything that could fire on incomplete data: validators, constraints
(`Field(min_length=...)`, `Annotated[..., Gt(0)]`) and required-ness. Twins are built once per model and
cached; a model that refers to itself is given `Any` at the point of recursion.
"""

from __future__ import annotations

import threading
import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, create_model

__all__ = ["partial_twin"]

_twins: dict[type[BaseModel], type[BaseModel]] = {}
_building: set[type[BaseModel]] = set()
_lock = threading.RLock()


def partial_twin(model: type[BaseModel]) -> type[BaseModel]:
    """The cached partial twin of `model` (named Partial<Model>)."""
    twin = _twins.get(model)
    if twin is not None:
        return twin
    with _lock:
        twin = _twins.get(model)
        if twin is None:
            twin = _twins[model] = _build(model)
    return twin


def _build(model: type[BaseModel]) -> type[BaseModel]:
    _building.add(model)
    try:
        fields: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            annotation = _relax(info.annotation)
            fields[name] = (annotation | None, None)
            if info.alias and info.alias != name:
                from pydantic import Field

                fields[name] = (annotation | None, Field(default=None, alias=info.alias))
        config = ConfigDict(extra="ignore", populate_by_name=True, arbitrary_types_allowed=True)
        return create_model(
            f"Partial{model.__name__}", __config__=config, __module__=model.__module__, **fields
        )
    finally:
        _building.discard(model)


def _relax(tp: Any) -> Any:
    """`tp` with nested models replaced by their twins and constraints (Annotated metadata) dropped."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in _building:
            return Any
        return partial_twin(tp)
    origin = get_origin(tp)
    if origin is None:
        return tp
    args = get_args(tp)
    if origin is Annotated:
        return _relax(args[0])
    if origin is typing.Literal:
        return tp
    if origin is Union or origin is types.UnionType:
        relaxed = tuple(_relax(a) for a in args)
        return Union[relaxed]  # noqa: UP007 (a runtime-built union)
    if origin in (list, set, frozenset, tuple, dict) or hasattr(origin, "__class_getitem__"):
        relaxed_args = tuple(Ellipsis if a is Ellipsis else _relax(a) for a in args)
        try:
            return origin[relaxed_args] if len(relaxed_args) != 1 else origin[relaxed_args[0]]
        except TypeError:
            return tp
    return tp
