"""Merging chunk values by the schema: order, overlap dedupe, scalar policies, disagreements (properties)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from extract.documents import Part, check_policies, chunk_schema, merge_parts
from extract.errors import ConfigurationError
from extract.schema import compile_schema

_ITEMS = {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}}}}


def _schema(policy: Any = None, items_policy: Any = None) -> dict[str, Any]:
    scalar: dict[str, Any] = {"type": "string"}
    if policy is not None:
        scalar["x-merge"] = policy
    items = dict(_ITEMS)
    if items_policy is not None:
        items["x-merge"] = items_policy
    return {"type": "object", "properties": {"title": scalar, "items": items}}


_RECORDS = st.lists(
    st.builds(lambda i, v: {"id": i, "v": v}, st.integers(0, 50), st.integers(0, 3)), max_size=8
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_RECORDS, min_size=1, max_size=6), st.data())
def test_arrays_concatenate_in_order_and_overlap_repeats_are_kept_once(
    chunks: list[list[dict[str, int]]], data: st.DataObject
) -> None:
    # distinct records (equal records inside one overlap cannot be told apart: name key fields for those)
    serial = iter(range(10_000))
    chunks = [[{**r, "n": next(serial)} for r in own] for own in chunks]
    parts: list[Part] = []
    expected: list[dict[str, int]] = []
    position = 0
    for i, own in enumerate(chunks):
        # the items this chunk shares with the previous one: a suffix of that chunk's items (its overlap)
        shared = data.draw(st.integers(0, len(chunks[i - 1]))) if i else 0
        repeated = chunks[i - 1][len(chunks[i - 1]) - shared :] if shared else []
        start = position - (10 if shared else 0)
        parts.append(Part(start, position + 100, {"items": repeated + own}))
        expected.extend(own)
        position += 100
    merged, disagreements = merge_parts(_schema(), parts)
    assert merged == {"items": expected}
    assert disagreements == []


def test_items_in_chunks_that_do_not_overlap_are_all_kept() -> None:
    parts = [Part(0, 10, {"items": [{"id": 1}]}), Part(10, 20, {"items": [{"id": 1}]})]
    assert merge_parts(_schema(), parts)[0] == {"items": [{"id": 1}, {"id": 1}]}


def test_key_fields_dedupe_items_that_differ_elsewhere_and_concat_keeps_all() -> None:
    parts = [
        Part(0, 12, {"items": [{"id": 1, "v": 1}]}),
        Part(10, 20, {"items": [{"id": 1, "v": 2}, {"id": 2}]}),
    ]
    assert merge_parts(_schema(items_policy={"key": ["id"]}), parts)[0]["items"] == [
        {"id": 1, "v": 1},
        {"id": 2},
    ]
    assert merge_parts(_schema(items_policy="dedupe"), parts)[0]["items"] == [
        {"id": 1, "v": 1},
        {"id": 1, "v": 2},
        {"id": 2},
    ]
    assert len(merge_parts(_schema(items_policy="concat"), parts)[0]["items"]) == 3


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from("abc")), min_size=1, max_size=8),
    st.sampled_from([None, "first", "last", "most_frequent"]),
)
def test_scalar_policies(values: list[str | None], policy: str | None) -> None:
    parts = [Part(i * 10, i * 10 + 10, {"title": v}) for i, v in enumerate(values)]
    merged, disagreements = merge_parts(_schema(policy), parts)
    present = [v for v in values if v is not None]
    if not present:
        assert "title" not in merged
        return
    if policy in (None, "first"):
        expected = present[0]
    elif policy == "last":
        expected = present[-1]
    else:
        counts = Counter(present)
        expected = next(v for v in present if counts[v] == max(counts.values()))
    assert merged["title"] == expected
    if len(set(present)) > 1:
        (conflict,) = disagreements
        assert conflict.path == "$.title"
        assert conflict.values == tuple(present)
        assert conflict.ranges == tuple((p.start, p.end) for p in parts if p.value["title"] is not None)
    else:
        assert disagreements == []


def test_nested_objects_merge_recursively_through_refs_and_pydantic_policies() -> None:
    class Party(BaseModel):
        name: str
        city: str = Field(json_schema_extra={"merge": "last"})

    class Contract(BaseModel):
        title: str
        party: Party

    schema = compile_schema(Contract).user_schema
    parts = [
        Part(0, 10, {"title": "A", "party": {"name": "X"}}),
        Part(10, 20, {"title": None, "party": {"city": "Paris"}}),
        Part(20, 30, {"title": "B", "party": {"name": "X", "city": "Rome"}}),
    ]
    merged, disagreements = merge_parts(schema, parts)
    assert merged == {"title": "A", "party": {"name": "X", "city": "Rome"}}
    assert [d.path for d in disagreements] == ["$.title", "$.party.city"]
    assert Contract.model_validate(merged).party.city == "Rome"


def test_chunk_schema_relaxes_required_on_the_object_path_only() -> None:
    class Item(BaseModel):
        id: str

    class Doc(BaseModel):
        number: str
        items: list[Item] = Field(min_length=1)

    relaxed = chunk_schema(compile_schema(Doc).user_schema)
    compiled = compile_schema(relaxed)
    assert compiled.parse({"number": None, "items": []}) == {"items": []}
    with pytest.raises(Exception, match="id"):
        compiled.parse({"number": None, "items": [{}]})  # a record a chunk reports must be whole


@pytest.mark.parametrize("policy", ["newest", {"key": []}, 3])
def test_unknown_policies_are_refused_before_anything_is_sent(policy: Any) -> None:
    with pytest.raises(ConfigurationError, match="merge policy"):
        check_policies(_schema(policy))


def test_a_property_named_merge_is_not_a_policy() -> None:
    check_policies({"type": "object", "properties": {"merge": {"type": "string"}}})


_SCORES = st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.9]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from("abc")), _SCORES), min_size=1, max_size=8))
def test_highest_confidence_takes_the_surest_value_and_falls_back_to_document_order(
    given_values: list[tuple[str | None, float | None]],
) -> None:
    parts = [
        Part(i * 10, i * 10 + 10, {"title": v}, None if score is None else {"$.title": score})
        for i, (v, score) in enumerate(given_values)
    ]
    merged, _ = merge_parts(_schema("highest_confidence"), parts)
    present = [(v, score) for v, score in given_values if v is not None]
    if not present:
        assert "title" not in merged
        return
    scored = [(v, score) for v, score in present if score is not None]
    if scored:
        best = max(score for _, score in scored)
        expected = next(v for v, score in scored if score == best)  # ties: the earliest
    else:
        expected = present[0][0]  # no logprobs anywhere: `first`
    assert merged["title"] == expected


def test_highest_confidence_reads_the_nested_and_quoted_paths_evidence_uses() -> None:
    schema = {
        "type": "object",
        "properties": {
            "party": {
                "type": "object",
                "properties": {"unit price": {"type": "string", "x-merge": "highest_confidence"}},
            }
        },
    }
    parts = [
        Part(0, 10, {"party": {"unit price": "1"}}, {'$.party["unit price"]': 0.2}),
        Part(10, 20, {"party": {"unit price": "2"}}, {'$.party["unit price"]': 0.8}),
    ]
    merged, disagreements = merge_parts(schema, parts)
    assert merged == {"party": {"unit price": "2"}}
    assert [d.path for d in disagreements] == ['$.party["unit price"]']
