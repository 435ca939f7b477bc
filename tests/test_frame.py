"""extract_frame: columns from the schema, the same index, failures in `_error`, flattening."""

from __future__ import annotations

import builtins
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from extract.errors import ConfigurationError, ExtractionFailed
from extract.frame import extract_frame, flatten_value, schema_columns
from extract.testing import TestServer

MODEL = "llama3.1-8b"


class Address(BaseModel):
    city: str
    zip: str


class Person(BaseModel):
    name: str
    age: int
    address: Address
    tags: list[str]


def test_schema_columns_flatten_nested_models_in_declaration_order() -> None:
    schema = Person.model_json_schema()
    assert schema_columns(schema) == ["name", "age", "address.city", "address.zip", "tags"]
    assert schema_columns(schema, flatten=False) == ["name", "age", "address", "tags"]


def test_schema_columns_follow_optional_nested_objects_and_stop_on_recursion() -> None:
    schema = {
        "type": "object",
        "properties": {
            "boss": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
            "n": {"type": "integer"},
        },
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/Node"}},
            }
        },
    }
    assert schema_columns(schema) == ["boss.name", "boss.child", "n"]


@given(
    st.recursive(
        st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2)),
        lambda inner: st.dictionaries(
            st.text(alphabet="abc", min_size=1, max_size=2), inner, min_size=1, max_size=3
        ),
        max_leaves=10,
    ).filter(lambda v: isinstance(v, dict))
)
def test_flatten_keeps_every_leaf_exactly_once(value: dict[str, Any]) -> None:
    def leaves(node: Any) -> list[Any]:
        if isinstance(node, dict) and node:
            return [leaf for v in node.values() for leaf in leaves(v)]
        return [node]

    row = flatten_value(value)
    assert sorted(map(repr, row.values())) == sorted(map(repr, leaves(value)))
    assert flatten_value(value, flatten=False) == value


def test_frame_keeps_the_index_and_reports_failures_per_row() -> None:
    df = pd.DataFrame(
        {"bio": ["Ada Lovelace, 36, London", None, "Grace Hopper, 85, Arlington"]}, index=["x", "y", "z"]
    )
    with TestServer() as server:
        out = extract_frame(df, Person, "bio", base_url=server.base_url, model=MODEL, progress=False)
    assert list(out.index) == ["x", "y", "z"]
    assert list(out.columns) == ["name", "age", "address.city", "address.zip", "tags", "_error"]
    assert pd.isna(out.loc["x", "_error"]) and isinstance(out.loc["x", "address.city"], str)
    assert "expected a string" in out.loc["y", "_error"]
    assert pd.isna(out.loc["y", "name"])


def test_frame_without_flattening_keeps_nested_models() -> None:
    df = pd.DataFrame({"bio": ["Ada Lovelace, 36, London"]})
    with TestServer() as server:
        out = extract_frame(
            df, Person, "bio", flatten=False, base_url=server.base_url, model=MODEL, progress=False
        )
    assert isinstance(out.loc[0, "address"], Address)


def test_errors_raise_raises_the_first_failure() -> None:
    df = pd.DataFrame({"bio": ["Ada"]})
    with TestServer() as server:
        server.script(*["invalid_json"] * 3)
        with pytest.raises(ExtractionFailed):
            extract_frame(
                df,
                Person,
                "bio",
                errors="raise",
                base_url=server.base_url,
                model=MODEL,
                max_attempts=3,
                progress=False,
            )


def test_a_missing_text_column_names_the_columns() -> None:
    df = pd.DataFrame({"a": ["x"], "b": ["y"]})
    with pytest.raises(ConfigurationError, match=r"no column 'bio'.*'a', 'b'"):
        extract_frame(df, Person, "bio")


def test_missing_pandas_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pandas(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ConfigurationError, match=r'pip install "extract-llm\[pandas\]"'):
        extract_frame(object(), Person, "bio")  # type: ignore[arg-type]


@pytest.mark.parametrize("texts", [["Ada Lovelace, 36, London", "Bob, 40, Paris"], ["Ada, 36, London", None]])
def test_error_column_is_none_where_a_row_worked_in_every_frame(texts: list[str | None]) -> None:
    """All-success and mixed frames alike: object dtype, None (never NaN) for rows without error."""
    df = pd.DataFrame({"bio": texts}, index=["p", "p"])  # a repeated label must not break the column
    with TestServer() as server:
        out = extract_frame(df, Person, "bio", base_url=server.base_url, model=MODEL, progress=False)
    errors = out["_error"]
    assert errors.dtype == object
    assert errors.iloc[0] is None
    if texts[1] is None:
        assert isinstance(errors.iloc[1], str)
    else:
        assert errors.iloc[1] is None
