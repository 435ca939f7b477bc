"""JSON Schema `pattern` -> a regex in the subset llama.cpp's JSON-Schema converter turns into valid GBNF.

llama.cpp's converter (`llama_cpp.llama_grammar.SchemaConverter._visit_pattern`) copies a pattern almost
verbatim into the grammar: it demands `^...$`, refuses `(?`, and passes escapes such as `\\d`, `\\S` or `\\.`
through into GBNF, whose parser knows none of them ("unknown escape"). So every pattern is re-emitted here
from Python's own parse tree, in a form the converter handles: anchored, groups without `(?`, literal
characters either plain (letters, digits, space) or as one-character classes, every other character as a
`\\xHH`/`\\uHHHH`/`\\UHHHHHHHH` escape inside a class (the only escapes both sides agree on).

ECMA-262 `\\p{..}` / `\\P{..}` (Unicode properties, which Python's parser lacks) become looser classes: letters
and digits keep their ASCII part plus everything past it, any other property any character.

The grammar constrains JSON text, not the decoded value, so characters a JSON string must escape (`"`, `\\`,
control characters) are left out of classes and any pattern that requires one literally is not translated.
Whatever cannot be translated exactly enough returns None: the caller then leaves the pattern out of the
grammar and the client-side validator alone enforces it. A translation may be looser than the pattern
(large repeat bounds are opened), never the cause of a broken grammar.

Pure: no llama.cpp import.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from extract._sre import sre_parser

__all__ = ["MAX_REPEAT", "translate_pattern"]

_parser = sre_parser

# The converter unrolls {m,n} into nested optional groups: bounds above this become open (`{m,}`), and a
# minimum above it is not translated (the grammar would hold thousands of rules).
MAX_REPEAT = 32
_MAX_PATTERN = 1000  # longer patterns are not worth a grammar
_MAX_OUTPUT = 4000
_MAX_DEPTH = 40

# Characters a JSON string cannot hold raw: never allowed by a translated class.
_JSON_FORBIDDEN = r"\x00-\x1F\x22\x5C"
_ANY = f"[^{_JSON_FORBIDDEN}]"
_PLAIN = re.compile(r"[A-Za-z0-9 ]")
_CATEGORY_MEMBERS = {
    "CATEGORY_DIGIT": r"0-9",
    "CATEGORY_WORD": r"a-zA-Z0-9\x5F",
    "CATEGORY_SPACE": r"\x20",  # tab and newlines would need a JSON escape
}
_CATEGORY_NEGATED = {
    "CATEGORY_NOT_DIGIT": "CATEGORY_DIGIT",
    "CATEGORY_NOT_WORD": "CATEGORY_WORD",
    "CATEGORY_NOT_SPACE": "CATEGORY_SPACE",
}


class _Untranslatable(Exception):
    pass


def translate_pattern(pattern: str) -> str | None:
    """An anchored regex the converter accepts and that constrains like `pattern`, or None."""
    if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = _parser.parse(_without_properties(pattern))
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    if tree.state.flags & (re.IGNORECASE | re.MULTILINE | re.VERBOSE):
        return None
    try:
        body = _anchored(list(tree))
    except (_Untranslatable, RecursionError):
        return None
    if len(body) > _MAX_OUTPUT:
        return None
    return f"^{body}$"


_PROPERTY = re.compile(r"\\[pP]\{([^{}]*)\}")
_ANY_CHAR = "\\x00-\\U0010FFFF"
# ASCII letters/digits plus every non-ASCII character: looser than the property, never stricter.
_PROPERTY_CLASSES = {
    "L": "a-zA-Z\\u00AA-\\U0010FFFF",
    "N": "0-9\\u00B2-\\U0010FFFF",
}


def _without_properties(pattern: str) -> str:
    """`\\p{L}` and friends rewritten as Python classes (see the module docstring); other text untouched."""
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        match = _PROPERTY.match(pattern, index) if char == "\\" else None
        if match is not None:
            name = match.group(1).split("=")[-1]
            members = _ANY_CHAR
            if match.group(0)[1] == "p":
                members = _PROPERTY_CLASSES.get(name[:1] if name[:1] in ("L", "N") else "", _ANY_CHAR)
                if name in ("Letter", "Alphabetic", "Alpha") or name.endswith("_Letter"):
                    members = _PROPERTY_CLASSES["L"]
            out.append(members if in_class else f"[{members}]")
            index = match.end()
            continue
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            index += 1
            if pattern.startswith("^", index):
                out.append("^")
                index += 1
            if pattern.startswith("]", index):  # a leading ] is a member
                out.append("]")
                index += 1
            continue
        if char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


def _anchored(items: list[tuple[Any, Any]]) -> str:
    """Search semantics -> whole-string semantics, one top-level alternative at a time."""
    if len(items) == 1 and items[0][0].name == "BRANCH":
        return "(" + "|".join(_anchored(list(b)) for b in items[0][1][1]) + ")"
    start = bool(items) and _is_at(items[0], "AT_BEGINNING", "AT_BEGINNING_STRING")
    if start:
        items = items[1:]
    end = bool(items) and _is_at(items[-1], "AT_END", "AT_END_STRING")
    if end:
        items = items[:-1]
    body = _seq(items, 0)
    return ("" if start else f"({_ANY})*") + body + ("" if end else f"({_ANY})*")


def _is_at(item: tuple[Any, Any], *names: str) -> bool:
    op, av = item
    return bool(op.name == "AT" and av.name in names)


def _seq(items: list[tuple[Any, Any]], depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise _Untranslatable("too deep")
    return "".join(_item(op.name, av, depth) for op, av in items)


def _item(name: str, av: Any, depth: int) -> str:
    if name == "LITERAL":
        return _literal(av)
    if name == "NOT_LITERAL":
        return f"[^{_JSON_FORBIDDEN}{_escape(av)}]"
    if name == "ANY":
        return _ANY
    if name == "IN":
        return _set([(op.name, member) for op, member in av])
    if name == "CATEGORY":
        return _set([(name, av)])
    if name == "BRANCH":
        return "(" + "|".join(_seq(list(b), depth + 1) for b in av[1]) + ")"
    if name == "SUBPATTERN":
        add_flags, del_flags = (av[1], av[2]) if len(av) == 4 else (0, 0)
        if add_flags or del_flags:
            raise _Untranslatable("inline flags")
        inner = _seq(list(av[-1]), depth + 1)
        return f"({inner})" if inner else ""
    if name in ("MAX_REPEAT", "MIN_REPEAT"):
        low, high, body = av
        inner = _seq(list(body), depth + 1)
        if not inner:
            return ""
        return f"({inner}){_quantifier(low, high)}"
    raise _Untranslatable(name)  # anchors inside, lookarounds, back-references, atomic groups


def _quantifier(low: int, high: int) -> str:
    open_ended = high is _parser.MAXREPEAT or high > MAX_REPEAT
    if low > MAX_REPEAT:
        raise _Untranslatable("repeat minimum too large")
    if open_ended:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _literal(code: int) -> str:
    char = chr(code)
    if _PLAIN.fullmatch(char):
        return char
    if code < 0x20 or char in '"\\':
        raise _Untranslatable("literal needs a JSON escape")
    return f"[{_escape(code)}]"


def _escape(code: int) -> str:
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _set(members: list[tuple[str, Any]]) -> str:
    negated = bool(members) and members[0][0] == "NEGATE"
    if negated:
        members = members[1:]
    parts: list[str] = []
    for name, av in members:
        if name == "LITERAL":
            if not negated and (av < 0x20 or chr(av) in '"\\'):
                continue  # unusable in JSON text raw: leave it out (narrower, still valid)
            parts.append(_escape(av))
        elif name == "RANGE":
            low, high = av
            if not negated:
                low = max(low, 0x20)
                if low > high:
                    continue
                if low <= 0x22 <= high or low <= 0x5C <= high:
                    parts.extend(_split_range(low, high))
                    continue
            parts.append(f"{_escape(low)}-{_escape(high)}")
        elif name == "CATEGORY" and av.name in _CATEGORY_MEMBERS:
            parts.append(_CATEGORY_MEMBERS[av.name])
        elif name == "CATEGORY" and av.name in _CATEGORY_NEGATED and not negated:
            if len(members) > 1:
                # [\S\s], [\D\d], [\W...]: approximated by "any JSON string character"
                return _ANY
            return f"[^{_JSON_FORBIDDEN}{_CATEGORY_MEMBERS[_CATEGORY_NEGATED[av.name]]}]"
        else:
            raise _Untranslatable(f"set member {name}")
    if negated:
        return f"[^{_JSON_FORBIDDEN}{''.join(parts)}]"
    if not parts:
        raise _Untranslatable("set holds only characters JSON must escape")
    return f"[{''.join(parts)}]"


def _split_range(low: int, high: int) -> list[str]:
    """A positive range minus `"` and `\\`."""
    out: list[str] = []
    start = low
    for hole in (0x22, 0x5C):
        if start <= hole <= high:
            if start <= hole - 1:
                out.append(f"{_escape(start)}-{_escape(hole - 1)}")
            start = hole + 1
    if start <= high:
        out.append(f"{_escape(start)}-{_escape(high)}")
    return out
