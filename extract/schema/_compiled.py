"""CompiledSchema: one user schema prepared for one provider, and the compile steps that build it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from extract._ecma_regex import RegexError, compile_ecma
from extract._json import loads
from extract.errors import ConfigurationError, SchemaError, ValidationFailed
from extract.schema._codec import IDENTITY, Codec, Unrepresentable, Wrap, same_json, wire_match
from extract.schema._compact import expanded_size, hoist_repeats, strip_annotations
from extract.schema._guard import MAX_INSTANCE_DEPTH, check_ref_cycles, has_ref_cycle, too_deep
from extract.schema._load import Source
from extract.schema._normalise import normalise
from extract.schema._options import Options, Relaxation, TooBig
from extract.schema._profiles import Profile
from extract.schema._subset import strict_violations
from extract.schema._transform import transform
from extract.schema._validate import Validator, choose_draft

__all__ = ["CompiledSchema", "build"]

_MODES = ("json_schema", "json_object", "json_object_schema")


class CompiledSchema:
    """A user schema compiled for one provider: what to send, and how to read the reply back.

    `wire_schema` is what the model sees in every mode; `decode` turns a wire-shaped reply into the
    user's shape and `validate` checks it against the user's full schema (every constraint the wire
    had to drop included). The dicts returned by `response_format` are built once and shared: do not
    mutate them.
    """

    __slots__ = (
        "_codec",
        "_formats",
        "_recursive",
        "_source",
        "_validator",
        "name",
        "provider",
        "relaxations",
        "strict",
        "user_schema",
        "wire_schema",
    )

    def __init__(
        self,
        *,
        source: Source,
        provider: str,
        strict: bool,
        user_schema: dict[str, Any],
        wire_schema: dict[str, Any],
        codec: Codec,
        relaxations: tuple[Relaxation, ...],
    ) -> None:
        self._source = source
        self.provider = provider
        self.strict = strict
        self.name = source.name
        self.user_schema = user_schema
        self.wire_schema = wire_schema
        self.relaxations = relaxations
        self._codec = codec
        self._recursive = has_ref_cycle(user_schema)  # decode/encode recurse per level of the value
        self._validator: Validator | None = None
        self._formats: dict[str, dict[str, Any]] = {
            "json_schema": {
                "type": "json_schema",
                "json_schema": {"name": self.name, "strict": strict, "schema": wire_schema},
            },
            "json_object": {"type": "json_object"},
            "json_object_schema": {"type": "json_object", "schema": wire_schema},
        }

    def __repr__(self) -> str:
        kind = "strict" if self.strict else "non-strict"
        return (
            f"CompiledSchema(name={self.name!r}, provider={self.provider!r}, {kind}, "
            f"{len(self.relaxations)} relaxations)"
        )

    def response_format(self, mode: str = "json_schema") -> dict[str, Any]:
        """The request's `response_format` for `mode` (json_schema | json_object | json_object_schema)."""
        found = self._formats.get(mode)
        if found is None:
            raise ConfigurationError(f"unknown response_format mode {mode!r}; use one of {list(_MODES)}")
        return found

    @property
    def validator(self) -> Validator:
        if self._validator is None:
            tp = self._source.pydantic_type
            self._validator = (
                Validator.for_pydantic(tp) if tp is not None else Validator.for_json_schema(self.user_schema)
            )
        return self._validator

    def decode(self, obj: Any) -> Any:
        """Wire-shaped JSON -> user-shaped JSON (lenient: unexpected shapes pass through for validation,
        and so does a value nested too deeply to walk, which validation then rejects)."""
        if self._recursive and too_deep(obj) is not None:
            return obj
        try:
            return self._codec.decode(obj)
        except RecursionError:
            return obj

    def encode(self, value: Any) -> Any:
        """User-shaped JSON -> wire-shaped JSON; raises ValueError (`Unrepresentable`) when the wire cannot
        carry the value exactly (e.g. data deeper than an unrolled recursion)."""
        if self._recursive and too_deep(value) is not None:
            raise Unrepresentable(f"the value is nested more than {MAX_INSTANCE_DEPTH} levels deep")
        try:
            return self._encode(value)
        except RecursionError:
            raise Unrepresentable("the value is nested too deeply to encode") from None

    def _encode(self, value: Any) -> Any:
        encoded = self._codec.encode(value)
        if self.strict and not wire_match(self.wire_schema, encoded, self.wire_schema.get("$defs", {})):
            raise Unrepresentable(
                "the wire schema does not accept this value (it may use properties the user schema leaves "
                "open but the wire closes)"
            )
        if not _same_modulo_null_defaults(self._codec.decode(encoded), value):
            raise Unrepresentable("the wire form of this value is ambiguous: it would decode differently")
        return encoded

    def validate(self, obj: Any) -> Any:
        """Check a user-shaped value (or JSON text) against the user's full schema; raises ValidationFailed."""
        return self.validator.validate(obj)

    def parse(self, obj: Any) -> Any:
        """decode + validate; a reply already in the user's shape (the model ignored the wire transforms,
        as happens in json_object and prompt modes) is accepted too. Raises the first ValidationFailed."""
        if isinstance(obj, (str, bytes, bytearray)):
            try:
                obj = loads(obj)  # exact numbers: integers of any size stay int
            except ValueError:
                return self.validate(obj)  # raises a located "not valid JSON" violation
        # from here on a str is a value (a string-rooted schema's answer), not JSON text
        decoded = self.decode(obj)
        try:
            return self.validator.validate_value(decoded)
        except ValidationFailed as first:
            if self._codec.identity:
                raise
            try:
                return self.validator.validate_value(obj)
            except ValidationFailed:
                raise first from None


def _same_modulo_null_defaults(back: Any, value: Any) -> bool:
    """Equal as JSON, except that `back` may add nulls where `value` lacks the key: an optional property
    whose default is null travels as null (absent and null are the same value under that default)."""
    if isinstance(back, dict) and isinstance(value, dict):
        extra = [k for k in back if k not in value]
        if any(back[k] is not None for k in extra) or any(k not in back for k in value):
            return False
        return all(_same_modulo_null_defaults(back[k], value[k]) for k in value)
    if isinstance(back, list) and isinstance(value, list):
        return len(back) == len(value) and all(
            _same_modulo_null_defaults(b, v) for b, v in zip(back, value, strict=True)
        )
    return same_json(back, value)


def _levels(profile: Profile) -> Iterator[Options]:
    """Ever smaller wire schemas: shorter descriptions first, then shallower recursion, then fewer enums."""
    unroll = profile.unroll_depth
    for descriptions in ("full", "short", "hints", "none"):
        yield Options(descriptions=descriptions, unroll=unroll)
    for depth in range(unroll - 1, -1, -1):
        yield Options(descriptions="none", unroll=depth)
    for cap in (100, 20, 0):
        yield Options(descriptions="none", unroll=0, max_enum=cap)


def _strict(user: dict[str, Any], profile: Profile) -> tuple[dict[str, Any], Codec, list[Relaxation]] | str:
    """The first strict wire schema that fits the profile, or the reason none does."""
    reason = "no strict form found"
    too_big_at: int | None = None
    for opts in _levels(profile):
        if too_big_at is not None and opts.unroll >= too_big_at:
            continue  # only shallower recursion can shrink an expansion that blew the node budget
        try:
            done = transform(user, profile, opts)
        except TooBig as exc:
            reason, too_big_at = str(exc), opts.unroll
            continue
        wire = done.wire
        limit = profile.max_chars
        big = limit is not None and expanded_size(wire) > limit
        if big:
            wire = hoist_repeats(wire)
            if expanded_size(wire) > 4 * (limit or 0):
                reason = f"#: the schema needs more than {limit} characters even with shared definitions"
                continue  # too large to check cheaply, and far from fitting
        problems = strict_violations(wire, profile)
        if problems and not big:
            wire = hoist_repeats(wire)
            problems = strict_violations(wire, profile)
        if not problems:
            return wire, done.codec, done.relaxations
        reason = problems[0]
    return reason


def _is_object_root(schema: dict[str, Any]) -> bool:
    t = schema.get("type")
    return t == "object" or (t is None and "properties" in schema and "anyOf" not in schema)


def _pattern_relaxations(schema: Any) -> list[Relaxation]:
    """Patterns the validator cannot check in linear time (see _regex): stated, never silently slow."""
    out: list[Relaxation] = []
    stack: list[tuple[Any, str]] = [(schema, "#")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((v, f"{path}/{i}") for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        found = [("pattern", node["pattern"])] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            found += [("patternProperties", key) for key in node["patternProperties"]]
        for keyword, pattern in found:
            try:
                reason = compile_ecma(pattern).relaxation
            except RegexError as exc:
                raise SchemaError(f"invalid regular expression {pattern!r}: {exc}", path) from None
            if reason is not None:
                out.append(Relaxation(path, keyword, reason))
        stack.extend((v, f"{path}/{_escape(k)}") for k, v in node.items() if k not in _DATA_KEYWORDS)
    return out


_PROBES: tuple[Any, ...] = (None, 0, "", [], {})
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def build(source: Source, profile: Profile) -> CompiledSchema:
    """Compile `source` for `profile`; a well-formed schema always compiles (strict or not)."""
    if source.pydantic_type is None:
        # malformed schemas (wrong keyword types, self-referring cycles) are refused before any walker
        # meets them; the schema document itself was checked by `load`
        choose_draft(source.schema)
        check_ref_cycles(source.schema)
    user = normalise(source.schema)
    if source.pydantic_type is None:
        check_ref_cycles(user)  # with `$id` and anchor references resolved to `#/$defs/...`
    found: tuple[dict[str, Any], Codec, list[Relaxation]] | str | None = None
    if profile.strict_json_schema:
        found = _strict(user, profile)
    if isinstance(found, tuple):
        wire, codec, relaxations = found
        strict = True
    else:
        wire = strip_annotations(user)
        codec = IDENTITY
        relaxations = []
        if found is not None:
            relaxations.append(
                Relaxation(
                    "#",
                    "strict",
                    f"no strict form fits ({found}); the full schema is sent for json_object mode "
                    "and enforced after decoding",
                )
            )
        if not _is_object_root(wire):
            defs = wire.pop("$defs", None)
            wire = {
                "type": "object",
                "properties": {"value": wire},
                "required": ["value"],
                "additionalProperties": False,
                **({"$defs": defs} if defs is not None else {}),
            }
            codec = Wrap("value")
        strict = False
    if source.pydantic_type is None:
        relaxations.extend(_pattern_relaxations(user))
    compiled = CompiledSchema(
        source=source,
        provider=profile.name,
        strict=strict,
        user_schema=user,
        wire_schema=wire,
        codec=codec,
        relaxations=tuple(relaxations),
    )
    if source.pydantic_type is None:
        validator = compiled.validator  # a schema jsonschema rejects fails here, before any request is spent
        for probe in _PROBES:  # so does one that loops through references the static check cannot follow
            validator.is_valid(probe)
    return compiled
