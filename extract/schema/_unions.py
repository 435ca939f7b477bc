"""Enums and anyOf for the wire: split enums by type, flatten and dedupe unions, and squeeze unions
over the provider's branch limit (same-typed scalars merged, object branches folded into one object of
optional fields, array branches into one array, else JSON text)."""

from __future__ import annotations

from typing import Any

from extract.errors import SchemaError
from extract.schema._codec import (
    IDENTITY,
    Arr,
    Codec,
    EnumMap,
    Field,
    JsonText,
    MapEntries,
    Obj,
    Union,
    dump_json,
    wire_match,
)
from extract.schema._hints import compose, constraint_hints
from extract.schema._options import Options
from extract.schema._profiles import Profile
from extract.schema._shapes import NULL, Result, boxed, coalesce_enums, fits, json_kind, nullable

__all__ = ["UnionBuilder"]


class UnionBuilder:
    """The transform's shared state and helpers, plus everything about enums and unions."""

    def __init__(self, profile: Profile, opts: Options) -> None:
        self.profile = profile
        self.opts = opts
        self.relax: dict[tuple[str, str], str] = {}
        self.wire_defs: dict[str, Any] = {}

    # ---- helpers -------------------------------------------------------------------------------------
    def relaxed(self, path: str, keyword: str, reason: str) -> None:
        self.relax.setdefault((path, keyword), reason)

    def describe(self, wire: dict[str, Any], s: dict[str, Any], hints: list[str]) -> dict[str, Any]:
        text = compose(s.get("description"), hints, self.opts.descriptions)
        if text is None or "$ref" in wire:
            return wire
        return {**wire, "description": text}

    def any_value(self, s: dict[str, Any], hints: list[str] | None = None) -> Result:
        extra = [*(hints or []), "any JSON value, written as JSON text"]
        return self.describe({"type": "string"}, s, extra), JsonText()

    # ---- enums and unions ------------------------------------------------------------------------------
    def enum(self, s: dict[str, Any], path: str) -> Result:
        values = s["enum"]
        if not isinstance(values, list) or not values:
            raise SchemaError("enum must be a non-empty list", path)
        t = s.get("type")
        allowed = t if isinstance(t, list) else [t] if isinstance(t, str) else None
        if allowed is not None:
            kept = [v for v in values if any(fits(v, x) for x in allowed)]
            values = kept or values
        groups: dict[str, list[Any]] = {}
        for v in values:
            groups.setdefault(json_kind(v), []).append(v)
        results: list[Result] = []
        for kind, members in groups.items():
            results.append(self.enum_group(kind, members, s, path))
        wire, codec = self.union(results, path, 1)
        if "anyOf" in wire:
            wire = self.describe(wire, s, [])
        return wire, codec

    def enum_group(self, kind: str, members: list[Any], s: dict[str, Any], path: str) -> Result:
        if kind == "null":
            return NULL, IDENTITY
        codec: Codec = IDENTITY
        if kind == "json":
            by_text = {dump_json(m, sort_keys=True): m for m in members}
            members, kind, codec = list(by_text), "string", EnumMap(by_text)
        if kind == "number" and all(isinstance(m, int) or s.get("type") == "integer" for m in members):
            kind = "integer" if all(float(m).is_integer() for m in members) else kind
        cap = self.opts.max_enum
        chars = sum(len(m) for m in members if isinstance(m, str))
        too_long = (
            self.profile.large_enum_chars is not None
            and len(members) > self.profile.large_enum_threshold
            and chars > self.profile.large_enum_chars
        )
        if (cap is not None and len(members) > cap) or too_long:
            self.relaxed(path, "enum", f"{len(members)} allowed values are checked after decoding")
            return self.describe({"type": kind}, s, [f"one of {len(members)} allowed values"]), codec
        hints = [h for _, h in constraint_hints(s, kind)] if kind != "string" or codec.identity else []
        return self.describe({"type": kind, "enum": members}, s, hints), codec

    def or_null(self, inner: dict[str, Any], codec: Codec, path: str) -> Result:
        """`inner` or null, re-squeezed when the extra branch would pass the anyOf limit."""
        wire = nullable(inner)
        limit = self.profile.max_any_of
        if limit is None or len(wire.get("anyOf", ())) <= limit:
            return wire, codec
        desc = wire.get("description")
        plain = {k: v for k, v in inner.items() if k != "description"}
        merged, merged_codec = self.union([(plain, codec), (NULL, IDENTITY)], path, 0)
        if desc is not None and "$ref" not in merged:
            merged = {**merged, "description": desc}
        return merged, merged_codec

    def union(self, results: list[Result], path: str, depth: int) -> Result:
        flat: list[Result] = []
        for wire, codec in results:
            if set(wire) <= {"anyOf", "description"} and "anyOf" in wire:
                if isinstance(codec, Union):
                    flat.extend((w, c) for w, c in codec.branches)
                else:
                    flat.extend((w, IDENTITY) for w in wire["anyOf"])
            else:
                flat.append((wire, codec))
        flat = coalesce_enums(flat)
        seen: set[str] = set()
        unique: list[Result] = []
        for wire, codec in flat:
            key = dump_json(wire, sort_keys=True)
            if key not in seen:
                seen.add(key)
                unique.append((wire, codec))
        limit = self.profile.max_any_of
        if limit is not None and len(unique) > limit:
            unique = self.reduce(unique, path, limit)
        if len(unique) == 1:
            return unique[0]
        wire_out: dict[str, Any] = {"anyOf": [w for w, _ in unique]}
        if all(c.identity for _, c in unique):
            return wire_out, IDENTITY
        return wire_out, Union(list(unique), self.wire_defs)

    def reduce(self, branches: list[Result], path: str, limit: int) -> list[Result]:
        """Too many anyOf branches: merge same-typed scalars, then objects into one, else JSON text."""
        self.relaxed(path, "anyOf", f"more than {limit} branches: merged on the wire, checked after decoding")
        scalars: dict[str, dict[str, Any]] = {}
        objects: list[Result] = []
        arrays: list[Result] = []
        rest: list[Result] = []
        for wire, codec in branches:
            t = wire.get("type")
            if isinstance(t, str) and t not in ("object", "array") and codec.identity:
                t = "number" if t == "integer" else t
                prev = scalars.get(t)
                if prev is None:
                    scalars[t] = {"type": t, **({"enum": wire["enum"]} if "enum" in wire else {})}
                elif "enum" in prev and "enum" in wire:
                    scalars[t] = {"type": t, "enum": [*prev["enum"], *wire["enum"]]}
                else:
                    scalars[t] = {"type": t}
            elif t == "object" and (isinstance(codec, Obj) or codec.identity):
                objects.append((wire, codec))
            elif (
                t == "array"
                and "items" in wire
                and "prefixItems" not in wire
                and not isinstance(codec, MapEntries)
            ):
                arrays.append((wire, codec))
            else:
                rest.append((wire, codec))
        out: list[Result] = [(w, IDENTITY) for w in scalars.values()]
        if len(arrays) > 1:
            items = [(w["items"], c.items if isinstance(c, Arr) else IDENTITY) for w, c in arrays]
            item_wire, item_codec = self.union(items, f"{path}/items", 1)
            merged = {"type": "array", "items": item_wire}
            out.append((merged, IDENTITY if item_codec.identity else Arr(items=item_codec)))
        else:
            out.extend(arrays)
        if len(objects) > 1 and len(out) + len(rest) + 1 <= limit:
            out.append(self.merge_objects(objects, path))
        else:
            out.extend(objects)
        out.extend(rest)
        if len(out) > limit:
            # JSON text carries every value; a null branch stays so "absent" keeps its wire form
            has_null = any(w == NULL for w, _ in branches)
            return [self.any_value({}), *([(NULL, IDENTITY)] if has_null else [])]
        return out

    def merge_objects(self, objects: list[Result], path: str) -> Result:
        """Object branches -> one object whose fields are all optional (null when the branch lacks them)."""
        by_name: dict[str, list[Field]] = {}
        for wire, codec in objects:
            if isinstance(codec, Obj):
                own = codec.fields
            else:
                own = [Field(k, k, IDENTITY, v) for k, v in wire.get("properties", {}).items()]
            for f in own:
                by_name.setdefault(f.name, []).append(f)
        fields: list[Field] = []
        for name, same in by_name.items():
            inner, codec = self.union([(f.inner_wire, f.codec) for f in same], f"{path}/anyOf", 1)
            fields.append(Field(name, name, codec, inner))
        wire_props: dict[str, Any] = {}
        merged: list[Field] = []
        for f in fields:
            if wire_match(f.inner_wire, None, self.wire_defs):
                wire_props[f.name] = boxed(f.inner_wire)
                merged.append(Field(f.name, f.wire_name, f.codec, f.inner_wire, "wrapped"))
            else:
                wire_props[f.name], codec = self.or_null(f.inner_wire, f.codec, path)
                merged.append(Field(f.name, f.wire_name, codec, f.inner_wire, "drop_null"))
        wire = {
            "type": "object",
            "properties": wire_props,
            "required": list(wire_props),
            "additionalProperties": False,
            "description": "fill the fields of one variant, null for the rest",
        }
        return wire, Obj(merged)
