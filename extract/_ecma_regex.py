"""JSON Schema regular expressions (ECMA-262 dialect) checked in time linear in the input.

Python's `re` backtracks: ``^(a+)+$`` against ``"a"*50 + "!"`` never returns, and a model's reply (or a
hostile document echoed into one) chooses the input. Patterns are translated to RE2 syntax and run by RE2,
whose running time is linear in the input. ECMA-262 features RE2 lacks (backreferences, lookaround) fall
back to Python `re`, but only where the cost is bounded: the pattern has no nested or alternated quantified
groups (which is what makes backtracking exponential), and the input is at most `limit` characters, chosen
so that the polynomial worst case stays under a fixed step budget. Anything else is not checked at all; both
cases are stated as `relaxation` (compile lists them in `CompiledSchema.relaxations` and logs a warning).

Translation (ECMA-262 -> RE2 / Python): ``\\d \\w \\b`` are ASCII-only, ``\\s`` is ECMA's whitespace set,
``.`` stops at every line terminator, ``$`` is the end of the input (Python's also matches before a final
newline), ``\\uXXXX`` / ``\\u{...}`` / ``\\cX`` / ``\\p{...}`` (with the u flag's long property names) are
read, and identity escapes such as ``\\/`` are plain characters.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import re2

__all__ = ["EcmaRegex", "RegexError", "compile_ecma", "is_ecma_regex"]

logger = logging.getLogger("extract")

# Steps the Python fallback may take in the worst case; with k quantifiers in one backtracking unit the
# worst case is about n ** (k + 1) steps, so the input bound is STEP_BUDGET ** (1 / (k + 1)).
STEP_BUDGET = 10**6
MAX_FALLBACK_LENGTH = 10_000

# ECMA-262 WhiteSpace and LineTerminator code points (\s)
_WS = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_LINE_END = "\n\r\u2028\u2029"

# the u flag's long General_Category names RE2 only knows by their short form
_CATEGORIES = {
    "Letter": "L", "Cased_Letter": "L", "Uppercase_Letter": "Lu", "Lowercase_Letter": "Ll",
    "Titlecase_Letter": "Lt", "Modifier_Letter": "Lm", "Other_Letter": "Lo", "Mark": "M",
    "Nonspacing_Mark": "Mn", "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Number": "N",
    "Decimal_Number": "Nd", "digit": "Nd", "Letter_Number": "Nl", "Other_Number": "No",
    "Punctuation": "P", "punct": "P", "Connector_Punctuation": "Pc", "Dash_Punctuation": "Pd",
    "Open_Punctuation": "Ps", "Close_Punctuation": "Pe", "Initial_Punctuation": "Pi",
    "Final_Punctuation": "Pf", "Other_Punctuation": "Po", "Symbol": "S", "Math_Symbol": "Sm",
    "Currency_Symbol": "Sc", "Modifier_Symbol": "Sk", "Other_Symbol": "So", "Separator": "Z",
    "Space_Separator": "Zs", "Line_Separator": "Zl", "Paragraph_Separator": "Zp", "Other": "C",
    "Control": "Cc", "cntrl": "Cc", "Format": "Cf", "Surrogate": "Cs", "Private_Use": "Co",
    "Unassigned": "Cn",
}  # fmt: skip


class RegexError(ValueError):
    """The pattern is not a valid ECMA-262 regular expression (or one this module can read)."""


def _hex(cp: int) -> str:
    return f"\\x{{{cp:x}}}"


def _py_cp(cp: int) -> str:
    return f"\\U{cp:08x}"


@dataclass
class _Group:
    look: bool = False  # a lookaround: its own backtracking unit (lookarounds never backtrack into)
    quantified_inside: bool = False
    alternation: bool = False
    quantifiers: int = 0


@dataclass
class _Out:
    """Both dialects side by side, and what the pattern needs from an engine."""

    re2: list[str] = field(default_factory=list)
    py: list[str] = field(default_factory=list)
    re2_ok: bool = True
    py_ok: bool = True
    nested: bool = False  # a quantified group that holds a quantifier or an alternation
    max_unit_quantifiers: int = 0

    def add(self, both: str, py: str | None = None) -> None:
        self.re2.append(both)
        self.py.append(both if py is None else py)


def _literal(ch: str) -> tuple[str, str]:
    """(RE2, Python) text matching the character `ch` literally."""
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch, ch
    if ch.isascii() and not ch.isspace() and 32 < ord(ch) < 127:
        return "\\" + ch, "\\" + ch
    return _hex(ord(ch)), _py_cp(ord(ch))  # escapes keep lone surrogates out of RE2's UTF-8 pattern


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out = _Out()
        self.stack: list[_Group] = [_Group()]

    def error(self, what: str) -> RegexError:
        return RegexError(f"{what} at position {self.i}")

    def peek(self, ahead: int = 0) -> str:
        j = self.i + ahead
        return self.p[j] if j < len(self.p) else ""

    def run(self) -> _Out:
        last_atom: _Group | None = None  # the group just closed, for the quantifier that may follow
        can_repeat = False
        while self.i < len(self.p):
            ch = self.p[self.i]
            quant = self.quantifier()
            if quant is not None:
                if not can_repeat:
                    raise self.error("nothing to repeat")
                self.repeat(quant, last_atom)
                last_atom, can_repeat = None, False
                continue
            last_atom, can_repeat = None, True
            if ch == "\\":
                can_repeat = self.escape()
            elif ch == "[":
                self.char_class()
            elif ch == "(":
                self.open_group()
                can_repeat = False
            elif ch == ")":
                last_atom = self.close_group()
            elif ch == "|":
                self.stack[-1].alternation = True
                self.out.add("|")
                self.i += 1
                can_repeat = False
            elif ch == ".":
                self.out.add("[^\\n\\r\\x{2028}\\x{2029}]", "[^\\n\\r\\u2028\\u2029]")
                self.i += 1
            elif ch == "^":
                self.out.add("^")
                self.i += 1
                can_repeat = False
            elif ch == "$":
                self.out.add("\\z", "\\Z")
                self.i += 1
                can_repeat = False
            else:
                self.out.add(*_literal(ch))
                self.i += 1
        if len(self.stack) != 1:
            raise self.error("missing )")
        self.close_unit(self.stack[0])
        return self.out

    # quantifiers ----------------------------------------------------------------------------------

    _BRACES = re.compile(r"\{(\d+)(,(\d*))?\}")

    def quantifier(self) -> tuple[str, bool, int] | None:
        """(text, variable, largest count) of a quantifier at the cursor (lazy `?` included), else None."""
        ch = self.peek()
        if ch in "*+?":
            text, variable, top = ch, True, 0
            self.i += 1
        elif ch == "{":
            m = self._BRACES.match(self.p, self.i)
            if m is None:
                return None  # Annex B: a brace that is no quantifier is a literal
            low, comma, high = int(m.group(1)), m.group(2), m.group(3)
            if high and int(high) < low:
                raise self.error("numbers out of order in {} quantifier")
            text, variable = m.group(0), bool(comma) and (not high or int(high) != low)
            top = max(low, int(high) if high else 0)
            self.i = m.end()
        else:
            return None
        if self.peek() == "?":
            text += "?"
            self.i += 1
        return text, variable, top

    def repeat(self, quant: tuple[str, bool, int], atom: _Group | None) -> None:
        text, variable, top = quant
        if top > 1000:
            self.out.re2_ok = False  # RE2 caps counted repetition at 1000
        self.out.add(text)
        if (variable or top > 1) and atom is not None and (atom.quantified_inside or atom.alternation):
            self.out.nested = True  # (a+){50} or (a|a){30} backtrack as badly as (a+)+
        if variable:
            self.stack[-1].quantifiers += 1
            for group in self.stack:
                group.quantified_inside = True

    # groups ---------------------------------------------------------------------------------------

    _NAME = re.compile(r"\?<([A-Za-z_$][A-Za-z0-9_$]*)>")

    def open_group(self) -> None:
        rest = self.p[self.i + 1 : self.i + 4]
        if rest.startswith("?:"):
            self.out.add("(?:")
            self.i += 3
            self.stack.append(_Group())
        elif rest.startswith(("?=", "?!")) or rest.startswith(("?<=", "?<!")):
            head = "(" + (rest[:3] if rest.startswith("?<") else rest[:2])
            self.out.add(head)
            self.out.re2_ok = False
            self.i += len(head)
            self.stack.append(_Group(look=True))
        elif rest.startswith("?"):
            m = self._NAME.match(self.p, self.i + 1)
            if m is None:
                raise self.error("invalid group")
            self.out.add(f"(?P<{m.group(1).replace('$', '_S_')}>")
            self.i = m.end()
            self.stack.append(_Group())
        else:
            self.out.add("(")
            self.i += 1
            self.stack.append(_Group())

    def close_group(self) -> _Group:
        if len(self.stack) == 1:
            raise self.error("unbalanced )")
        group = self.stack.pop()
        self.out.add(")")
        self.i += 1
        if group.look:
            self.close_unit(group)
        else:
            self.stack[-1].quantifiers += group.quantifiers
        if group.quantified_inside:
            for outer in self.stack:
                outer.quantified_inside = True
        return group

    def close_unit(self, group: _Group) -> None:
        self.out.max_unit_quantifiers = max(self.out.max_unit_quantifiers, group.quantifiers)

    # escapes --------------------------------------------------------------------------------------

    def escape(self) -> bool:
        """Translate the escape at the cursor (outside a class); False when it is an assertion."""
        c = self.peek(1)
        if c == "":
            raise self.error("\\ at end of pattern")
        if c in "bB":
            self.out.add("\\" + c)
            self.i += 2
            return False
        if c in "dDwWsS":
            self.out.add(*self.class_escape(c, in_class=False))
            self.i += 2
            return True
        if c.isdigit() and c != "0":
            m = re.compile(r"\d+").match(self.p, self.i + 1)
            if m is None:  # pragma: no cover - c is a digit
                raise self.error("bad backreference")
            self.out.re2_ok = False
            self.out.add(f"(?:\\{m.group(0)})")
            self.i = m.end()
            return True
        if c == "k":
            m = re.compile(r"k<([A-Za-z_$][A-Za-z0-9_$]*)>").match(self.p, self.i + 1)
            if m is None:
                raise self.error("invalid named reference")
            self.out.re2_ok = False
            self.out.add(f"(?P={m.group(1).replace('$', '_S_')})")
            self.i = m.end()
            return True
        if c in "pP":
            self.out.add(self.property(c))
            return True
        cp = self.code_point()
        self.out.add(_hex(cp), _py_cp(cp))
        return True

    def class_escape(self, c: str, *, in_class: bool) -> tuple[str, str]:
        """(RE2, Python) text for \\d \\D \\w \\W \\s \\S; inside a class, without brackets."""
        ws_re2 = "".join(_hex(ord(x)) if x != "-" else "-" for x in _WS)
        ws_py = "".join(_py_cp(ord(x)) if x != "-" else "-" for x in _WS)
        items = {"d": ("0-9", "0-9"), "w": ("0-9A-Za-z_", "0-9A-Za-z_"), "s": (ws_re2, ws_py)}
        if in_class:
            if c.islower():
                return items[c]
            # a negated class inside a class: both engines' ASCII \D \W \S (\S misses Unicode spaces)
            return "\\" + c, "\\" + c
        re2_text, py_text = items[c.lower()]
        neg = "^" if c.isupper() else ""
        return f"[{neg}{re2_text}]", f"[{neg}{py_text}]"

    def property(self, c: str) -> str:
        m = re.compile(r"[pP]\{([A-Za-z_]+)(?:=([A-Za-z_]+))?\}").match(self.p, self.i + 1)
        if m is None:
            raise self.error("invalid property escape")
        self.i = m.end()
        name, value = m.group(1), m.group(2)
        if value is not None:
            if name not in ("General_Category", "gc", "Script", "sc", "Script_Extensions", "scx"):
                raise self.error(f"unknown property {name!r}")
            name = value
        name = _CATEGORIES.get(name, name)
        self.out.py_ok = False  # Python's re has no \p
        return f"\\{c}{{{name}}}"

    def code_point(self) -> int:
        """The character an escape at the cursor stands for; moves past it."""
        c = self.peek(1)
        simple = {"t": 9, "n": 10, "v": 11, "f": 12, "r": 13}
        if c in simple:
            self.i += 2
            return simple[c]
        if c == "0" and not self.peek(2).isdigit():
            self.i += 2
            return 0
        if c == "c" and self.peek(2).isascii() and self.peek(2).isalpha():
            self.i += 3
            return ord(self.p[self.i - 1]) % 32
        if c == "x":
            m = re.compile(r"x([0-9A-Fa-f]{2})").match(self.p, self.i + 1)
            if m is not None:
                self.i = m.end()
                return int(m.group(1), 16)
        if c == "u":
            m = re.compile(r"u\{([0-9A-Fa-f]{1,6})\}|u([0-9A-Fa-f]{4})").match(self.p, self.i + 1)
            if m is not None:
                self.i = m.end()
                cp = int(m.group(1) or m.group(2), 16)
                if cp > 0x10FFFF:
                    raise self.error("code point out of range")
                if 0xD800 <= cp < 0xDC00:  # a surrogate pair written as two escapes
                    low = re.compile(r"\\u(D[C-Fc-f][0-9A-Fa-f]{2})").match(self.p, self.i)
                    if low is not None:
                        self.i = low.end()
                        return 0x10000 + ((cp - 0xD800) << 10) + (int(low.group(1), 16) - 0xDC00)
                return cp
        # an identity escape (\/ \. \- ...): the character itself
        self.i += 2
        return ord(c)

    # classes --------------------------------------------------------------------------------------

    def char_class(self) -> None:
        start = self.i
        self.i += 1
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        re2_items: list[str] = []
        py_items: list[str] = []
        while True:
            ch = self.peek()
            if ch == "":
                self.i = start
                raise self.error("unterminated character class")
            if ch == "]":
                self.i += 1
                break
            if ch == "\\":
                c = self.peek(1)
                if c in "dDwWsS" and c != "":
                    r, p = self.class_escape(c, in_class=True)
                    self.i += 2
                elif c in "pP" and c != "":
                    r = p = self.property(c)
                elif c == "b":
                    r, p = _hex(8), _py_cp(8)
                    self.i += 2
                else:
                    cp = self.code_point()
                    r, p = _hex(cp), _py_cp(cp)
            elif ch == "-":
                r = p = "-" if re2_items and self.peek(1) not in ("]", "") else "\\-"
                self.i += 1
            else:
                r, p = _literal(ch)
                self.i += 1
            re2_items.append(r)
            py_items.append(p)
        if not re2_items:  # ECMA: [] matches nothing, [^] matches any character
            self.out.add(
                "[\\x{0}-\\x{10ffff}]" if negated else "[^\\x{0}-\\x{10ffff}]",
                "[\\s\\S]" if negated else "(?!)",
            )
            return
        neg = "^" if negated else ""
        self.out.add(f"[{neg}{''.join(re2_items)}]", f"[{neg}{''.join(py_items)}]")


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.never_capture = True


@dataclass(frozen=True, slots=True)
class EcmaRegex:
    """One compiled JSON Schema pattern. `search(text)` is True when the pattern matches somewhere in `text`,
    or when the text cannot be checked safely (see `relaxation`): `limit` is the longest text that is
    checked (None: any length, on RE2; 0: none at all)."""

    source: str
    search: Callable[[str], bool]
    relaxation: str | None = None
    limit: int | None = None


def _linear(compiled: re2._Regexp) -> Callable[[str], bool]:
    def search(text: str) -> bool:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: RE2 sees its (invalid) UTF-8 bytes
            data = text.encode("utf-8", "surrogatepass")
        return compiled.search(data) is not None

    return search


def _bounded(compiled: re.Pattern[str], limit: int) -> Callable[[str], bool]:
    def search(text: str) -> bool:
        return len(text) > limit or compiled.search(text) is not None

    return search


def _unchecked(_: str) -> bool:
    return True


def _build(pattern: str) -> EcmaRegex:
    if not isinstance(pattern, str):
        raise RegexError(f"a pattern must be a string, got {type(pattern).__name__}")
    out = _Translator(pattern).run()
    re2_text, py_text = "".join(out.re2), "".join(out.py)
    if out.re2_ok:
        try:
            return EcmaRegex(pattern, _linear(re2.compile(re2_text.encode(), _RE2_OPTIONS)))
        except re2.error:
            pass  # e.g. a program over RE2's memory budget: try the bounded fallback
    py: re.Pattern[str] | None = None
    if out.py_ok:
        try:
            py = re.compile(py_text, re.ASCII)
        except re.error as exc:
            if "look-behind requires fixed-width" not in str(exc):  # valid ECMA, beyond Python's re
                raise RegexError(str(exc)) from None
        except (OverflowError, RecursionError) as exc:
            raise RegexError(str(exc)) from None
    if py is None:
        reason = (
            f"pattern {pattern!r} is not checked: neither RE2 nor Python's re can run it "
            "(\\p{...} together with lookaround or backreferences, or a variable-length lookbehind)"
        )
        return EcmaRegex(pattern, _unchecked, reason, 0)
    if out.nested:
        reason = (
            f"pattern {pattern!r} is not checked: it needs a backtracking engine (RE2 lacks "
            "backreferences and lookaround) and has nested quantifiers, so no input length bounds the time"
        )
        return EcmaRegex(pattern, _unchecked, reason, 0)
    limit = min(MAX_FALLBACK_LENGTH, int(STEP_BUDGET ** (1 / (out.max_unit_quantifiers + 1))))
    reason = (
        f"pattern {pattern!r} needs a backtracking engine (RE2 lacks backreferences, lookaround, lone "
        f"surrogates and repeat counts over 1000): checked only on strings of at most {limit} "
        "characters, longer ones are accepted unchecked"
    )
    return EcmaRegex(pattern, _bounded(py, limit), reason, limit)


@functools.lru_cache(maxsize=2048)
def compile_ecma(pattern: str) -> EcmaRegex:
    """Compile a JSON Schema `pattern` (cached; a relaxed one is logged once); RegexError when it is not a
    valid ECMA-262 regular expression."""
    found = _build(pattern)
    if found.relaxation is not None:
        logger.warning("%s", found.relaxation)
    return found


_MAX_FORMAT_PATTERN = 100_000


def is_ecma_regex(pattern: object) -> bool:
    """The `regex` format: a valid ECMA-262 regular expression (``\\p{L}`` included). Values come from
    replies, so nothing is cached or logged and absurdly long ones are refused."""
    if not isinstance(pattern, str):
        return True  # formats only constrain strings
    if len(pattern) > _MAX_FORMAT_PATTERN:
        return False
    try:
        _build(pattern)
    except RegexError:
        return False
    return True
