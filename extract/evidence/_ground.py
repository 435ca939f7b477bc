"""Where a value appears in the source text: spans (Python string offsets) and how well it matched.

Alignment, tried in this order, the first that finds anything wins:

- `exact`: the value's text occurs verbatim. Every occurrence is returned (a repeated value has several
  spans, earliest first): the text does not say which one the model read, and a reviewer wants them all.
- `normalised`: equal after case folding, accent removal (NFKD, combining marks dropped), whitespace
  collapsed and punctuation ignored; numbers equal as numbers whatever their format ("$1,250.50" for
  1250.5, "1.250,50" too); ISO dates equal to dates written out ("March 5, 2024", "5 Mar 2024",
  "03/05/2024"). Every occurrence again.
- `fuzzy`: the best approximate match of a string of 4+ characters (rapidfuzz's partial ratio on the
  normalised forms, difflib when rapidfuzz is absent), with its score in [0, 1]; at least FUZZY_CUTOFF.
- `none`: nothing found, the value is not in the text (a hallucination, or a value the model computed).

Spans cover the original characters, combining marks included, so `text[start:end]` is what a reviewer
should highlight. Pure.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

__all__ = ["FUZZY_CUTOFF", "Alignment", "Grounder", "Match"]

Alignment = Literal["exact", "normalised", "fuzzy", "none"]
Match = tuple[Alignment, list[tuple[int, int]], float]

FUZZY_CUTOFF = 0.85
_MIN_FUZZY = 4
_NUMBER = re.compile(r"(?<![\w.])[-+−]?\d[\d,.'’\u00a0\u202f ]*\d(?!\w)|(?<![\w.])[-+−]?\d(?![\w])")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
            ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
            ("october", "oct"), ("november", "nov"), ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATES = (
    (re.compile(rf"\b(?:{_MONTH})\.?\s+{_DAY},?\s+(\d{{4}})\b", re.I), ("m", "d", "y")),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?(?:{_MONTH})\.?,?\s+(\d{{4}})\b", re.I), ("d", "m", "y")),
    (re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b"), ("y", "mn", "d")),
    (re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\b"), ("a", "b", "y")),
)
_DIGITS = re.compile(r"[0-9]+")
_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)
# ASCII runs as `_fold` sees them: whitespace, or characters that are neither whitespace nor punctuation/symbols
_ASCII_RUN = re.compile(r"\s+|[^\s!-/:-@\[-`{-~]+")
_PLAIN_LITERAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")  # a number's literal with no exponent
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?\Z")


@functools.lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One character as compared in `normalised` mode: case-folded, accents dropped, punctuation and
    whitespace gone (a single space stands for a run of whitespace)."""
    if char.isspace():
        return " "
    out = []
    for piece in unicodedata.normalize("NFKD", char.casefold()):
        category = unicodedata.category(piece)
        if category[0] == "M":
            continue
        if category[0] in "PS" and not piece.isalnum():
            continue
        out.append(piece)
    return "".join(out)


def _fold_value(text: str) -> str:
    folded = "".join(_fold(c) for c in text)
    return " ".join(folded.split())


class Grounder:
    """One source text, prepared once (its folded form and the numbers and dates in it) and matched
    against many values."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._folded: str | None = None
        self._starts: list[int] = []  # folded index -> original index of the character it came from
        self._numbers: list[tuple[str, int, int]] | None = None
        self._digits: str | None = None  # every digit of the text, in order
        self._dates: list[tuple[dt.date, int, int]] | None = None

    # -- prepared views (built on first use) -----------------------------------------------------------

    def _fold_text(self) -> str:
        if self._folded is None and self.text.isascii():
            self._fold_ascii()
        if self._folded is None:
            pieces: list[str] = []
            starts: list[int] = []
            last_space = True
            fold = _fold
            for index, char in enumerate(self.text):
                folded = fold(char)
                if folded == " ":
                    if last_space:
                        continue
                    last_space = True
                elif folded:
                    last_space = False
                pieces.append(folded)
                starts.extend([index] * len(folded))
            self._folded = "".join(pieces)
            self._starts = starts
        return self._folded

    def _fold_ascii(self) -> None:
        """`_fold` over ASCII text by runs (the same result, at C speed per run): letters lowered, digits
        and other characters kept, punctuation and symbols dropped, whitespace runs one space."""
        pieces: list[str] = []
        starts: list[int] = []
        last_space = True
        for run in _ASCII_RUN.finditer(self.text):
            start, end = run.span()
            if self.text[start].isspace():
                if not last_space:
                    pieces.append(" ")
                    starts.append(start)
                    last_space = True
                continue
            pieces.append(run.group().lower())
            starts.extend(range(start, end))
            last_space = False
        self._folded = "".join(pieces)
        self._starts = starts

    def _end(self, folded_end: int) -> int:
        """The original end offset after folded character `folded_end - 1`, combining marks included."""
        end = self._starts[folded_end - 1] + 1
        text = self.text
        while end < len(text) and unicodedata.category(text[end])[0] == "M":
            end += 1
        return end

    def _number_list(self) -> list[tuple[str, int, int]]:
        """Every written number: (its significant digits, start, end); read as numbers only on demand."""
        if self._numbers is None:
            self._numbers = [
                (_significant(m.group()), m.start(), m.end()) for m in _NUMBER.finditer(self.text)
            ]
        return self._numbers

    def _digit_text(self) -> str:
        """Every ASCII digit of the text, in order (every byte of a non-ASCII character dropped)."""
        if self._digits is None:
            self._digits = (
                self.text.encode("utf-8", "surrogatepass").translate(None, _NOT_DIGITS).decode("ascii")
            )
        return self._digits

    def _number_spans(self, number: Decimal) -> list[tuple[int, int]]:
        """Where `number` is written in any format (the digits must match before the readings are tried)."""
        key = format(abs(number), "f").replace(".", "").strip("0")  # _significant of a plain decimal
        if key not in self._digit_text():  # its digits are nowhere in the text, in any format
            return []
        text = self.text
        return [
            (start, end)
            for digits, start, end in self._number_list()
            if digits == key and number in _readings(text[start:end])
        ]

    def _date_list(self) -> list[tuple[dt.date, int, int]]:
        if self._dates is None:
            found: list[tuple[dt.date, int, int]] = []
            for pattern, order in _DATES:
                for match in pattern.finditer(self.text):
                    for day in _date_readings(match, order):
                        found.append((day, match.start(), match.end()))
            self._dates = found
        return self._dates

    # -- matching --------------------------------------------------------------------------------------

    def match(self, value: Any) -> Match:
        """How `value` (a JSON leaf) appears in the text."""
        if type(value) is str and value and not value.isspace():  # the common case first: a string
            return self._match_string(value)
        if isinstance(value, bool):
            return "none", [], 0.0
        if isinstance(value, (int, float)):
            return self._match_number(value)
        if not isinstance(value, str) or not value.strip():
            return "none", [], 0.0
        return self._match_string(value)

    def _match_string(self, value: str) -> Match:
        spans = _occurrences(self.text, value)
        if value.isdigit():  # "42" as a number of its own, rather than inside "1425", where there is one
            spans = [span for span in spans if _whole_number_at(self.text, *span)] or spans
        if spans:
            return "exact", spans, 1.0
        spans = self._folded_spans(value)
        iso = _ISO_DATE.match(value)
        if not spans and iso is not None:
            spans = self._date_spans(iso)
        if not spans and _looks_numeric(value):
            number = _plain_number(value)
            if number is not None:
                spans = self._number_spans(number)
        if spans:
            return "normalised", _dedupe(spans), 1.0
        return self._fuzzy(value)

    def _match_number(self, value: float) -> Match:
        literal = repr(value) if isinstance(value, float) else str(value)
        if isinstance(value, float) and value.is_integer():
            literal = str(int(value))
        if (
            _PLAIN_LITERAL.match(literal)
            and literal.replace("-", "").replace(".", "").strip("0") not in self._digit_text()
        ):
            # the significant digits `_number_spans` looks for are nowhere in the text, so the literal is
            # not there either: `none` without reading the text (most values the model got wrong)
            return "none", [], 0.0
        spans = [s for s in _occurrences(self.text, literal) if _whole_number_at(self.text, *s)]
        if spans:
            return "exact", spans, 1.0
        try:
            number = Decimal(literal).normalize()
        except InvalidOperation:
            return "none", [], 0.0
        spans = self._number_spans(number)
        if spans:
            return "normalised", _dedupe(spans), 1.0
        return "none", [], 0.0

    def _folded_spans(self, value: str) -> list[tuple[int, int]]:
        needle = _fold_value(value)
        if not needle:
            return []
        haystack = self._fold_text()
        return [(self._starts[s], self._end(e)) for s, e in _occurrences(haystack, needle)]

    def _date_spans(self, iso: re.Match[str]) -> list[tuple[int, int]]:
        try:
            wanted = dt.date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        except ValueError:
            return []
        return [(s, e) for day, s, e in self._date_list() if day == wanted]

    def _fuzzy(self, value: str) -> Match:
        needle = _fold_value(value)
        if len(needle) < _MIN_FUZZY:
            return "none", [], 0.0
        haystack = self._fold_text()
        found = _partial(needle, haystack)
        if found is None:
            return "none", [], 0.0
        score, start, end = found
        if score < FUZZY_CUTOFF or end <= start:
            return "none", [], 0.0
        return "fuzzy", [(self._starts[start], self._end(end))], round(score, 4)


def _occurrences(haystack: str, needle: str) -> list[tuple[int, int]]:
    """Non-overlapping occurrences, earliest first. Each `find` goes on from the last occurrence, so the
    text is read once in all (`count` or `split` first would read it twice: slower for a few occurrences)."""
    found: list[tuple[int, int]] = []
    size = len(needle)
    find = haystack.find
    start = find(needle)
    while start >= 0:
        found.append((start, start + size))
        start = find(needle, start + size)
    return found


def _dedupe(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return sorted(set(spans))


def _whole_number_at(text: str, start: int, end: int) -> bool:
    """`42` inside `1425` or `3.42` is not the number 42."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if before.isdigit() or after.isdigit():
        return False
    if before in ".," and start > 1 and text[start - 2].isdigit():
        return False
    return not (after in ".," and end + 1 < len(text) and text[end + 1].isdigit())


def _significant(literal: str) -> str:
    """The digits of a number without leading or trailing zeros: `1,250.50` and `1250.5` -> `12505`."""
    return "".join(_DIGITS.findall(literal)).strip("0")


def _looks_numeric(value: str) -> bool:
    return any(c.isdigit() for c in value) and not any(c.isalpha() for c in value.strip("$€£¥ ").upper())


def _plain_number(value: str) -> Decimal | None:
    readings = _readings(value.strip().strip("$€£¥").strip())
    return readings[0] if readings else None


def _readings(literal: str) -> list[Decimal]:
    """The numbers a written number can mean: `1,250.50` -> 1250.5; `1.250,50` -> 1250.5; `1,250` ->
    1250 (and 1.25, as a decimal comma)."""
    if literal.isdigit():
        return [Decimal(literal).normalize()]
    cleaned = literal.replace("−", "-").replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    cleaned = cleaned.replace("'", "").replace("’", "")
    candidates: list[str] = []
    if "," in cleaned and "." in cleaned:
        if cleaned.rfind(",") > cleaned.rfind("."):
            candidates.append(cleaned.replace(".", "").replace(",", "."))
        else:
            candidates.append(cleaned.replace(",", ""))
    elif "," in cleaned:
        candidates.append(cleaned.replace(",", ""))
        if cleaned.count(",") == 1:
            candidates.append(cleaned.replace(",", "."))
    elif cleaned.count(".") > 1:
        candidates.append(cleaned.replace(".", ""))
    else:
        candidates.append(cleaned)
    out: list[Decimal] = []
    for candidate in candidates:
        try:
            out.append(Decimal(candidate).normalize())
        except InvalidOperation:
            continue
    return out


def _date_readings(match: re.Match[str], order: tuple[str, ...]) -> list[dt.date]:
    text = match.group(0).lower()
    month_name = next(
        (n for n in sorted(_MONTHS, key=len, reverse=True) if re.search(rf"\b{n}\b", text)), None
    )
    groups = [g for g in match.groups() if g is not None]
    fields = dict(zip([o for o in order if o != "m"], groups, strict=False))
    readings: list[tuple[int, int, int]] = []
    if "m" in order and month_name is not None:
        readings.append((int(fields["y"]), _MONTHS[month_name], int(fields["d"])))
    elif "mn" in order:
        readings.append((int(fields["y"]), int(fields["mn"]), int(fields["d"])))
    elif "a" in order:
        a, b, y = int(fields["a"]), int(fields["b"]), int(fields["y"])
        readings.extend([(y, a, b), (y, b, a)])  # month/day (US) or day/month
    out = []
    for y, m, d in readings:
        try:
            out.append(dt.date(y, m, d))
        except ValueError:
            continue
    return out


def _partial(needle: str, haystack: str) -> tuple[float, int, int] | None:
    """The best window of `haystack` for `needle`: (score in [0, 1], start, end) in folded offsets."""
    try:
        from rapidfuzz import fuzz
    except ImportError:
        return _partial_difflib(needle, haystack)
    found = fuzz.partial_ratio_alignment(needle, haystack, score_cutoff=FUZZY_CUTOFF * 100)
    if found is None:
        return None
    return found.score / 100.0, found.dest_start, found.dest_end


def _partial_difflib(needle: str, haystack: str) -> tuple[float, int, int] | None:
    import difflib

    best: tuple[float, int, int] | None = None
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(needle)
    for block in difflib.SequenceMatcher(None, haystack, needle, autojunk=False).get_matching_blocks():
        if block.size == 0:
            continue
        start = max(0, block.a - block.b)
        end = min(len(haystack), start + len(needle))
        matcher.set_seq1(haystack[start:end])
        score = matcher.ratio()
        if best is None or score > best[0]:
            best = (score, start, end)
    return best
