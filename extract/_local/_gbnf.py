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


# A symbol of a rule: None for a terminal (a character or a class), else the name of the rule it references.
_Symbol = str | None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.rules: dict[str, list[list[_Symbol]]] = {}
        self.referenced: set[str] = set()
        self.counter = 0

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
        if not self.rules:
            raise GrammarError("grammar defines no rule")
        missing = self.referenced - set(self.rules)
        if missing:
            raise GrammarError(f"undefined rule {sorted(missing)[0]!r}")
        if root not in self.rules:
            raise GrammarError(f"grammar has no {root!r} rule")
        _check_left_recursion(self.rules)

    def rule(self) -> None:
        name = self.name()
        self.space(False)
        if self.text[self.pos : self.pos + 3] != "::=":
            raise self.fail("expecting ::=")
        self.pos += 3
        self.space(True)
        self.rules[name] = self.alternates(name, False, 0)
        char = self.peek()
        if char == "\r":
            self.pos += 2 if self.peek(1) == "\n" else 1
        elif char == "\n":
            self.pos += 1
        elif char:
            raise self.fail("expecting newline or end")
        self.space(True)

    def synthetic(self, base: str) -> str:
        self.counter += 1
        return f"{base}#{self.counter}"  # '#' cannot occur in a real rule name

    def alternates(self, name: str, nested: bool, depth: int) -> list[list[_Symbol]]:
        if depth > MAX_NESTING:
            raise self.fail(f"groups nested more than {MAX_NESTING} deep")
        out = [self.sequence(name, nested, depth)]
        while self.peek() == "|":
            self.pos += 1
            self.space(True)
            out.append(self.sequence(name, nested, depth))
        return out

    def sequence(self, name: str, nested: bool, depth: int) -> list[_Symbol]:
        """One alternative, built as llama.cpp builds it (repetitions become synthesized rules)."""
        seq: list[_Symbol] = []
        last = 0  # where the item a following */+/?/{} repeats starts, as llama.cpp's last_sym_start
        while True:
            char = self.peek()
            if char == '"':
                self.pos += 1
                last = len(seq)
                while self.peek() != '"':
                    self.char()
                    seq.append(None)
                self.pos += 1
            elif char == "[":
                self.pos += 1
                if self.peek() == "^":
                    self.pos += 1
                last = len(seq)
                while self.peek() != "]":
                    self.char()
                    if len(seq) == last:  # a class is one terminal, however many ranges it lists
                        seq.append(None)
                    if self.peek() == "-" and self.peek(1) != "]":
                        if self.peek(1) == "":
                            raise self.fail("unexpected end of input")
                        self.pos += 1
                        self.char()
                self.pos += 1
            elif char in ("<", "!"):
                raise self.fail("token references are not used by extract")
            elif char and _is_word(char):
                reference = self.name()
                self.referenced.add(reference)
                last = len(seq)
                seq.append(reference)
            elif char == "(":
                self.pos += 1
                self.space(True)
                group = self.synthetic(name)
                self.rules[group] = self.alternates(name, True, depth + 1)
                if self.peek() != ")":
                    raise self.fail("expecting ')'")
                self.pos += 1
                last = len(seq)
                seq.append(group)
            elif char == ".":
                self.pos += 1
                last = len(seq)
                seq.append(None)
            elif char in ("*", "+", "?"):
                self.pos += 1
                self.space(nested)
                bounds: dict[str, tuple[int, int | None]] = {"*": (0, None), "+": (1, None), "?": (0, 1)}
                self.repeat(name, seq, last, *bounds[char])
                continue
            elif char == "{":
                self.pos += 1
                self.space(nested)
                low = self.integer()
                self.space(nested)
                high: int | None = low
                if self.peek() == ",":
                    self.pos += 1
                    self.space(nested)
                    high = self.integer() if self.peek().isdigit() else None
                    self.space(nested)
                if self.peek() != "}":
                    raise self.fail("expecting '}'")
                self.pos += 1
                if low > _MAX_REPETITION or (high is not None and high < low):
                    raise self.fail("repetition bounds llama.cpp refuses")
                if high is not None and high > _MAX_REPETITION:
                    high = None  # llama.cpp opens such a bound too
                self.space(nested)
                self.repeat(name, seq, last, low, high)
                continue
            else:
                return seq
            self.space(nested)

    def repeat(self, name: str, seq: list[_Symbol], last: int, low: int, high: int | None) -> None:
        """S{m,n} -> S (m times) then optional rules, in place, as llama.cpp's handle_repetitions."""
        if last == len(seq):
            raise self.fail("expecting an item before */+/?/{")
        item = seq[last:]
        if low == 0:
            del seq[last:]
        else:
            seq.extend(item * (low - 1))
        optional = 1 if high is None else high - low
        previous: str | None = None
        # Every optional rule has the same shape; a few stand for all of them (left recursion and
        # emptiness do not depend on how many there are).
        for index in range(min(optional, 3)):
            rule = self.synthetic(name)
            body = list(item)
            if high is None:
                body.append(rule)
            elif index > 0 and previous is not None:
                body.append(previous)
            self.rules[rule] = [body, []]
            previous = rule
        if optional > 0 and previous is not None:
            seq.append(previous)


def _check_left_recursion(rules: dict[str, list[list[_Symbol]]]) -> None:
    """llama.cpp refuses a rule that can reach itself before consuming a character; so do we.

    Mirrors llama_grammar_detect_left_recursion: a rule "may be empty" only when one of its alternatives is
    literally empty, and the walk goes on past a leftmost reference only when that rule may be empty.
    Iterative, so a long chain of rules cannot exhaust Python's stack.
    """
    may_be_empty = {name: any(not alt for alt in alts) for name, alts in rules.items()}
    visited: set[str] = set()
    for start in rules:
        if start in visited:
            continue
        in_progress: set[str] = {start}
        stack: list[tuple[str, list[str]]] = [(start, _leftmost(rules[start], may_be_empty))]
        while stack:
            name, pending = stack[-1]
            if not pending:
                stack.pop()
                in_progress.discard(name)
                visited.add(name)
                continue
            reference = pending.pop()
            if reference in in_progress:
                raise GrammarError(f"left recursion through rule {reference.split('#')[0]!r}")
            if reference in visited:
                continue
            in_progress.add(reference)
            stack.append((reference, _leftmost(rules[reference], may_be_empty)))


def _leftmost(alternatives: list[list[_Symbol]], may_be_empty: dict[str, bool]) -> list[str]:
    """The references a rule can start with: each alternative's first, and the next while they may be empty."""
    found: list[str] = []
    for alt in alternatives:
        for symbol in alt:
            if symbol is None:
                break
            found.append(symbol)
            if not may_be_empty.get(symbol, False):
                break
    return found
