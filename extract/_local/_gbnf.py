"""A pure-Python check of GBNF text against the rules of llama.cpp's grammar parser (llama-grammar.cpp).

llama.cpp parses a grammar in C; through llama-cpp-python a grammar it refuses becomes a NULL sampler that
the next call dereferences (the process dies with SIGSEGV), and a deeply nested one recurses on the C
stack. So every grammar is checked here first: the same lexical rules (names, literals, character classes,
the escapes the C parser knows, `{m,n}` repetitions and their limit), every referenced rule defined, a
`root` rule, and bounds on nesting and size that keep the C parser far from its stack limit.

Pure: no llama.cpp import. `check_gbnf` returns None for a grammar that passes, else why it does not.
"""

from __future__ import annotations

__all__ = ["MAX_GRAMMAR_CHARS", "MAX_NESTING", "check_gbnf"]

MAX_GRAMMAR_CHARS = 200_000
MAX_NESTING = 64
_MAX_REPETITION = 2000  # MAX_REPETITION_THRESHOLD in llama-grammar.cpp
_SIMPLE_ESCAPES = frozenset('trn\\"[]-')
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX = frozenset("0123456789abcdefABCDEF")


class GrammarError(ValueError):
    """The grammar text would be refused (or mishandled) by llama.cpp's parser."""


def check_gbnf(text: str, root: str = "root") -> str | None:
    """None when llama.cpp's parser accepts `text` (within our size bounds), else the reason."""
    if len(text) > MAX_GRAMMAR_CHARS:
        return f"grammar of {len(text)} characters is over the {MAX_GRAMMAR_CHARS} bound"
    if "\x00" in text:
        return "grammar holds a NUL character"
    try:
        _Parser(text).parse(root)
    except GrammarError as exc:
        return str(exc)
    return None


def _is_word(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "-")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.defined: set[str] = set()
        self.referenced: set[str] = set()

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def fail(self, what: str) -> GrammarError:
        return GrammarError(f"{what} at offset {self.pos}: {self.text[self.pos : self.pos + 30]!r}")

    def space(self, newline_ok: bool) -> None:
        while True:
            char = self.peek()
            if char in (" ", "\t") or (newline_ok and char in ("\r", "\n")):
                self.pos += 1
            elif char == "#":
                while self.peek() not in ("", "\r", "\n"):
                    self.pos += 1
            else:
                return

    def name(self) -> str:
        start = self.pos
        while _is_word(self.peek()):
            self.pos += 1
        if self.pos == start:
            raise self.fail("expecting a name")
        return self.text[start : self.pos]

    def integer(self) -> int:
        start = self.pos
        while self.peek().isascii() and self.peek().isdigit():
            self.pos += 1
        if self.pos == start:
            raise self.fail("expecting an integer")
        return int(self.text[start : self.pos])

    def char(self) -> None:
        char = self.peek()
        if char == "":
            raise self.fail("unexpected end of input")
        if char != "\\":
            self.pos += 1
            return
        escape = self.peek(1)
        if escape in _SIMPLE_ESCAPES:
            self.pos += 2
            return
        size = _HEX_ESCAPES.get(escape)
        if size is None:
            raise self.fail("unknown escape")
        digits = self.text[self.pos + 2 : self.pos + 2 + size]
        if len(digits) != size or not set(digits) <= _HEX:
            raise self.fail(f"expecting {size} hex digits")
        self.pos += 2 + size

    def parse(self, root: str) -> None:
        self.space(True)
        while self.pos < len(self.text):
            self.rule()
        if not self.defined:
            raise GrammarError("grammar defines no rule")
        missing = self.referenced - self.defined
        if missing:
            raise GrammarError(f"undefined rule {sorted(missing)[0]!r}")
        if root not in self.defined:
            raise GrammarError(f"grammar has no {root!r} rule")

    def rule(self) -> None:
        name = self.name()
        self.space(False)
        if self.text[self.pos : self.pos + 3] != "::=":
            raise self.fail("expecting ::=")
        self.pos += 3
        self.space(True)
        self.alternates(False, 0)
        self.defined.add(name)
        char = self.peek()
        if char == "\r":
            self.pos += 2 if self.peek(1) == "\n" else 1
        elif char == "\n":
            self.pos += 1
        elif char:
            raise self.fail("expecting newline or end")
        self.space(True)

    def alternates(self, nested: bool, depth: int) -> None:
        if depth > MAX_NESTING:
            raise self.fail(f"groups nested more than {MAX_NESTING} deep")
        self.sequence(nested, depth)
        while self.peek() == "|":
            self.pos += 1
            self.space(True)
            self.sequence(nested, depth)

    def sequence(self, nested: bool, depth: int) -> None:
        has_item = False
        while True:
            char = self.peek()
            if char == '"':
                self.pos += 1
                while self.peek() != '"':
                    self.char()
                self.pos += 1
            elif char == "[":
                self.pos += 1
                if self.peek() == "^":
                    self.pos += 1
                while self.peek() != "]":
                    self.char()
                    if self.peek() == "-" and self.peek(1) != "]":
                        if self.peek(1) == "":
                            raise self.fail("unexpected end of input")
                        self.pos += 1
                        self.char()
                self.pos += 1
            elif char in ("<", "!"):
                raise self.fail("token references are not used by extract")
            elif char and _is_word(char):
                self.referenced.add(self.name())
            elif char == "(":
                self.pos += 1
                self.space(True)
                self.alternates(True, depth + 1)
                if self.peek() != ")":
                    raise self.fail("expecting ')'")
                self.pos += 1
            elif char == ".":
                self.pos += 1
            elif char in ("*", "+", "?"):
                if not has_item:
                    raise self.fail("expecting an item before */+/?")
                self.pos += 1
            elif char == "{":
                if not has_item:
                    raise self.fail("expecting an item before {")
                self.pos += 1
                self.space(nested)
                low = self.integer()
                self.space(nested)
                high = low
                if self.peek() == ",":
                    self.pos += 1
                    self.space(nested)
                    high = self.integer() if self.peek().isdigit() else _MAX_REPETITION
                    self.space(nested)
                if self.peek() != "}":
                    raise self.fail("expecting '}'")
                self.pos += 1
                if low > _MAX_REPETITION or high < low:
                    raise self.fail("repetition bounds llama.cpp refuses")
            else:
                return
            has_item = True
            self.space(nested)
