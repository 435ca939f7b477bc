"""The embedded model's grammar path never kills the process (issue 9: `\\S` in a pattern was a SIGSEGV).

Patterns go through the grammar path in subprocesses, so a crash is a failed test rather than a dead
pytest; a crashing batch is bisected to name the pattern.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract._local._gbnf import check_gbnf
from extract._local._grammar import choose_grammar, relax_for_grammar
from extract._local._pattern import translate_pattern
from extract.testing._regex import example_for
from tests._local_model import local_model_missing

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "_grammar_worker.py"
_CORPUS_PATH = Path("shared", "corpus", "jsonschemabench", "schemas")
# The shared corpus sits next to the checkout (or next to the worktrees folder holding it).
CORPUS = next((d / _CORPUS_PATH for d in ROOT.parents if (d / _CORPUS_PATH).is_dir()), ROOT / _CORPUS_PATH)
BATCH = 400

_SKIP_MODEL = local_model_missing()
# The worker loads the model's vocabulary (not its weights) so grammars run as in generation.
needs_llama = pytest.mark.skipif(_SKIP_MODEL is not None, reason=_SKIP_MODEL or "")


def _patterns_in(node: Any) -> Iterator[str]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "pattern" and isinstance(value, str):
                    yield value
                elif key not in ("enum", "const", "default", "examples"):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _patterns(paths: list[Path]) -> list[str]:
    found: dict[str, None] = {}
    for path in paths:
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        found.update(dict.fromkeys(_patterns_in(schema)))
    return list(found)


def _holding(pattern: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"value": {"type": "string", "pattern": pattern}},
        "required": ["value"],
    }


def _run(
    patterns: list[str], mode: str = "guarded", schemas: list[Any] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER)],
        input=json.dumps({"mode": mode, "schemas": [_holding(p) for p in patterns] + (schemas or [])}),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def _crashing(patterns: list[str], mode: str = "guarded") -> list[str]:
    """Bisect a batch whose subprocess died down to the patterns that kill it."""
    if _run(patterns, mode).returncode == 0:
        return []
    if len(patterns) == 1:
        return patterns
    middle = len(patterns) // 2
    return _crashing(patterns[:middle], mode) + _crashing(patterns[middle:], mode)


def _check_all(patterns: list[str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    failures: list[str] = []
    for start in range(0, len(patterns), BATCH):
        batch = patterns[start : start + BATCH]
        done = _run(batch)
        if done.returncode != 0:
            failures.extend(f"{p!r} (exit {_run([p]).returncode})" for p in _crashing(batch))
            continue
        for level, count in json.loads(done.stdout).items():
            totals[level] = totals.get(level, 0) + count
    assert not failures, "the grammar path crashed on: " + ", ".join(failures[:20])
    return totals


@needs_llama
def test_bundled_schema_patterns_never_crash_the_grammar_path() -> None:
    patterns = _patterns(sorted((ROOT / "schemas").glob("*.json")))
    assert any("\\S" in p for p in patterns)  # the pattern of the report is among them
    totals = _check_all(patterns)
    assert totals.get("schema") == len(patterns)  # every bundled pattern keeps a schema grammar


@needs_llama
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"JSONSchemaBench corpus not found at {CORPUS}")
def test_every_corpus_pattern_goes_through_the_grammar_path_without_crashing() -> None:
    patterns = _patterns(sorted(CORPUS.glob("*/*.json")))
    assert len(patterns) > 100
    totals = _check_all(patterns)
    assert sum(totals.get(level, 0) for level in ("schema", "json", "none")) == len(patterns)


@needs_llama
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"JSONSchemaBench corpus not found at {CORPUS}")
def test_every_corpus_schema_goes_through_the_grammar_path_without_crashing() -> None:
    """Whole schemas too: llama-cpp-python's own path kills the process on 120 of these 4,094 schemas
    (measured: 102 grammars llama.cpp refuses, 18 nested deep enough to overflow its parser)."""
    schemas: list[Any] = []
    for path in sorted(CORPUS.glob("*/*.json")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(schema, dict):
            schemas.append(schema)
    totals: dict[str, int] = {}
    for start in range(0, len(schemas), 1000):
        done = _run([], schemas=schemas[start : start + 1000])
        assert done.returncode == 0, f"batch at {start} died with {done.returncode}: {done.stderr[-300:]}"
        for level, count in json.loads(done.stdout).items():
            totals[level] = totals.get(level, 0) + count
    assert totals.get("schema", 0) + totals.get("json", 0) == len(schemas)
    assert totals.get("schema", 0) > 0.9 * len(schemas)  # demotion stays the exception


@needs_llama
def test_the_unguarded_path_is_the_crash_the_harness_detects() -> None:
    """llama-cpp-python's own conversion of the report's pattern dies with SIGSEGV: what the guard prevents."""
    done = _run([r"^10\.[0-9]{4,9}/\S+$"], mode="raw")
    assert done.returncode == -signal.SIGSEGV, done.stderr[-500:]
    assert "unknown escape" in done.stderr


@needs_llama
def test_unicode_properties_and_non_ascii_reach_llama_cpp_as_grammars() -> None:
    patterns = [r"^\p{L}+$", r"[\p{N}]", r"^[\u0400-\u04FF]+$", "^é+$", r"^[^\x00-\x7F]$", "^\U0001f600$"]
    assert _check_all(patterns) == {"schema": len(patterns), "pattern left out": 0}


@needs_llama
def test_a_grammar_nested_too_deep_for_the_c_parser_never_reaches_it() -> None:
    """maxLength unrolls into nested groups: 32,767 deep overflows llama.cpp's parser itself (no NULL to check)."""
    deep = {"type": "object", "properties": {"s": {"type": "string", "maxLength": 32767}}}
    assert _run([], mode="raw", schemas=[deep]).returncode == -signal.SIGSEGV
    done = _run([], schemas=[deep])
    assert done.returncode == 0, done.stderr[-500:]
    assert json.loads(done.stdout) == {"schema": 1, "pattern left out": 0}


@needs_llama
def test_bisection_names_the_crashing_pattern() -> None:
    assert _crashing(["^a$", "^[0-9]+$", r"^x\S$", "^b{2}$"], mode="raw") == [r"^x\S$"]


def test_the_converter_output_for_the_report_fails_the_check() -> None:
    bad = 'root ::= "\\"" "10\\." [0-9]+ "/\\S"+ "\\""\n'
    problem = check_gbnf(bad)
    assert problem is not None and "unknown escape" in problem


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('root ::= "a"\n', None),
        ('root ::= [\\x41-\\x5A] item{2,4}\nitem ::= [^"\\\\] | "\\u00e9"\n', None),
        ('root ::= "\\d"\n', "unknown escape"),
        ("root ::= [a-\n", "unexpected end"),
        ("root ::= other\n", "undefined rule"),
        ('item ::= "a"\n', "no 'root' rule"),
        ('root ::= ("a"\n', "expecting ')'"),
        ('root ::= "a"{3,1}\n', "repetition bounds"),  # llama.cpp's parser loops on this one
        ('root ::= root "a"\n', "left recursion"),
        ('root ::= "a"?{2,}\n', "left recursion"),
        ('root ::= ""*\n', "expecting an item"),
        ('root ::= "a"{2001}\n', "repetition bounds"),
        ("root ::= " + "(" * 100 + '"a"' + ")" * 100 + "\n", "nested"),
        ('root ::= "\\x4"\n', "hex digits"),
        ("root ::= *\n", "expecting an item"),
    ],
)
def test_gbnf_check(text: str, reason: str | None) -> None:
    problem = check_gbnf(text)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and reason in problem, problem


@pytest.mark.parametrize(
    ("pattern", "inside", "outside"),
    [
        (r"^10\.[0-9]{4,9}/\S+$", ["10.1145/3555776"], ["10x1145/3", "10.1145/a b", "1.1145/x"]),
        (r"\S", ["a", " a "], ["", "   "]),
        (r"^(?:ab)+$", ["abab"], ["aba"]),
        (r"^\d{3}-\w+$", ["123-x_y"], ["12-x"]),
        (r"^a|b$", ["axx", "xxb"], ["xax"]),
        (r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", ["a@b.io"], ["a b@c.io"]),
        (r"^[A-Z\-]+$", ["A-B"], ["a"]),
        (r"^\p{L}+$", ["Zoë", "Ada"], ["a1", ""]),  # ECMA-262 properties: looser, ASCII part exact
        (r"^[\p{Lu}\d]{2}$", ["A1", "É9"], ["a-"]),
    ],
)
def test_translation_keeps_the_meaning(pattern: str, inside: list[str], outside: list[str]) -> None:
    translated = translate_pattern(pattern)
    assert translated is not None
    for text in inside:
        assert re.fullmatch(translated, text), (translated, text)
    for text in outside:
        assert not re.fullmatch(translated, text), (translated, text)


@pytest.mark.parametrize(
    "pattern", [r"(?=a)b", r"^\\p{L}$", r"^a\"b$", r"(a)\1", r"(?i)abc", r"^\bword$", r"a{40,50}"]
)
def test_untranslatable_patterns_are_left_out(pattern: str) -> None:
    assert translate_pattern(pattern) is None
    relaxed, notes = relax_for_grammar({"type": "string", "pattern": pattern})
    assert relaxed == {"type": "string"} and notes


def test_relaxing_leaves_data_alone_and_bounds_sizes() -> None:
    schema = {
        "type": "object",
        "properties": {"pattern": {"type": "string", "maxLength": 5000, "enum": [{"pattern": "\\S"}]}},
        "minProperties": 1,
    }
    relaxed, notes = relax_for_grammar(schema)
    assert relaxed["properties"]["pattern"] == {"type": "string", "enum": [{"pattern": "\\S"}]}
    assert notes == ["maxLength=5000 left to client-side validation"]


def test_refused_grammars_demote_to_json_then_to_none() -> None:
    refused = choose_grammar(
        {"type": "string"}, convert=lambda _s: "root ::= bad\n", json_grammar='root ::= "{}"\n'
    )
    assert refused.level == "json" and refused.text == 'root ::= "{}"\n'
    nothing = choose_grammar(
        {"type": "string"}, convert=lambda _s: "x", json_grammar="broken", accepts=lambda _t: False
    )
    assert nothing.level == "none" and nothing.text is None and len(nothing.notes) == 2

    def boom(_schema: str) -> str:
        raise AssertionError("Unrecognized schema")

    assert choose_grammar({"type": "string"}, convert=boom, json_grammar='root ::= "1"\n').level == "json"


_REGEXES = st.sampled_from(
    [
        r"\d",
        r"\w",
        r"\s",
        r"\S",
        r"\D",
        r"\W",
        r".",
        r"[a-f]",
        r"[^x]",
        r"[A-Z0-9_.-]",
        r"abc",
        r"\.",
        r"/",
        r"-",
    ]
)


@st.composite
def _regex(draw: st.DrawFn) -> str:
    parts = draw(st.lists(_REGEXES, min_size=1, max_size=5))
    quantified = [p + draw(st.sampled_from(["", "*", "+", "?", "{2}", "{1,3}"])) for p in parts]
    body = "".join(quantified) if draw(st.booleans()) else "(" + "|".join(quantified) + ")"
    return ("^" if draw(st.booleans()) else "") + body + ("$" if draw(st.booleans()) else "")


@settings(max_examples=200, deadline=None)
@given(pattern=_regex())
def test_translated_patterns_accept_the_original_examples_and_pass_the_check(pattern: str) -> None:
    """A sample the original pattern takes (in printable ASCII without `"` and `\\`) the translation takes too."""
    translated = translate_pattern(pattern)
    assert translated is not None
    sample = example_for(pattern)
    if sample is not None and re.fullmatch(r"[\x20-\x7e]*", sample) and not set(sample) & {'"', "\\"}:
        assert re.fullmatch(translated, sample), (pattern, translated, sample)
    assert check_gbnf(f"root ::= {_as_gbnf(translated)}\n") is None


def _as_gbnf(translated: str) -> str:
    """The translated regex as GBNF, the way llama.cpp's converter maps it (only with llama_cpp present)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return '"x"'
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    text = json_schema_to_gbnf(json.dumps({"type": "string", "pattern": translated}))
    return text.split("root ::= ", 1)[1].split("\n", 1)[0] + "\n" + text.split("\n", 1)[1]


_END_TO_END = """
import json, sys
from extract import Extractor
from extract.errors import ExtractError
from extract.local import LocalTransport
schema = json.load(open("schemas/paper_metadata.json"))
text = open("tests/samples/paper_metadata.txt").read()
with Extractor(transport=LocalTransport(), model="local/smollm2-135m", provider="local") as ex:
    try:
        value = ex.extract(schema, text, max_attempts=1, max_completion_tokens=48, temperature=0)
        print("value", json.dumps(value))
    except ExtractError as exc:
        print("error", type(exc).__name__)
"""


@needs_llama
def test_paper_metadata_with_the_local_model_does_not_crash() -> None:
    """The report's reproduction: paper_metadata.json on the embedded model. An honest failure is fine."""
    env = {k: v for k, v in os.environ.items() if k != "CEREBRAS_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-c", _END_TO_END],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode != -signal.SIGSEGV, done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(("value", "error")), done.stdout
    assert "unknown escape" not in done.stderr


_HOSTILE_SCHEMAS = """
import json
from extract.local import LocalTransport, _GRAMMARS
from extract.transports import WireRequest

schemas = [
    # the converter writes this enum value as "\\\\b", an escape llama.cpp's grammar parser does not know
    {"type": "object", "properties": {"k": {"enum": ["a\\bb", "x"]}}, "required": ["k"]},
    {"type": "object", "properties": {"doi": {"type": "string", "pattern": "^10\\\\.[0-9]+/\\\\S+$"}}},
    {"type": "object", "properties": {"s": {"type": "string", "maxLength": 100000, "pattern": "(?<=a)b"}}},
]
transport = LocalTransport()
statuses = []
for schema in schemas:
    body = {
        "model": "local/smollm2-135m",
        "messages": [{"role": "user", "content": "Answer with JSON."}],
        "max_completion_tokens": 8,
        "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    response = transport.send(WireRequest("/chat/completions", body), 120)
    statuses.append(response.status_code)
print(json.dumps({"statuses": statuses, "levels": [g.level for g in _GRAMMARS.values()]}))
"""


@needs_llama
def test_schemas_whose_grammar_llama_cpp_refuses_are_demoted_not_fatal() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _HOSTILE_SCHEMAS],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"statuses": [200, 200, 200], "levels": ["json", "schema", "schema"]}


_C_VERDICTS = """
import json, sys
import llama_cpp
texts = json.load(sys.stdin)
verdicts = []
for text in texts:
    sampler = llama_cpp.llama_sampler_init_grammar(None, text.encode("utf-8"), b"root")
    verdicts.append(bool(sampler))
    if sampler:
        llama_cpp.llama_sampler_free(sampler)
print(json.dumps(verdicts))
"""
_PIECES = (
    "item", " ::= ", "::=", '"a"', '"\\x41"', '"\\d"', '"\\."', '"\\u00e9"', '"\\x4"', "[a-z]", '[^"\\\\]',
    "[\\x30-\\x39]", "[\\S]", "[a-", "(", ")", "|", "*", "+", "?", "{2}", "{1,3}", "{3,1}", "{2,}", " ", "\n",
    ".", "# note\n", '"', "]", "-",
)  # fmt: skip


def test_the_python_check_never_passes_a_grammar_llama_cpp_refuses() -> None:
    """The invariant that keeps the C parser safe: check_gbnf OK implies llama.cpp parses it too."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    rng = random.Random(9)
    fuzz = [
        "root ::= " + "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12))) + "\n"
        for _ in range(3000)
    ]
    # Only what the check passes goes to llama.cpp: some refused texts (a{3,1}) make its parser loop.
    texts = [text for text in fuzz if check_gbnf(text) is None]
    assert len(texts) > 100
    done = subprocess.run(
        [sys.executable, "-c", _C_VERDICTS],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    engine = json.loads(done.stdout)
    too_lenient = [text for text, accepted in zip(texts, engine, strict=True) if not accepted]
    assert not too_lenient, too_lenient[:5]


def test_a_refused_translation_costs_only_the_pattern() -> None:
    """A translated pattern whose grammar is refused anyway: the schema keeps a grammar without the pattern."""
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "pattern": "^(a?)*$"}, "n": {"type": "integer"}},
        "required": ["a", "n"],
    }
    seen: list[dict[str, Any]] = []

    def convert(text: str) -> str:
        seen.append(json.loads(text))
        has_pattern = "pattern" in seen[-1]["properties"]["a"]
        return 'root ::= "x"? x\nx ::= x "a"\n' if has_pattern else 'root ::= "{}"\n'

    grammar = choose_grammar(schema, convert=convert, json_grammar='root ::= "1"\n')
    assert grammar.level == "schema" and grammar.text == 'root ::= "{}"\n'
    assert seen[1]["properties"]["a"] == {"type": "string"}
    assert "left recursion" in grammar.notes[0]
    assert translate_pattern("^(a?)*$") is not None


def test_deep_schemas_are_relaxed_without_recursion() -> None:
    schema: dict[str, Any] = {"type": "string", "pattern": "\\S"}
    for _ in range(3000):
        schema = {"type": "object", "properties": {"x": schema}}
    _relaxed, notes = relax_for_grammar(schema)
    assert notes == []  # the pattern translated
    grammar = choose_grammar(schema, convert=lambda _s: 'root ::= "{}"\n', json_grammar='root ::= "1"\n')
    assert grammar.level == "json"  # json.dumps gives up on 3000 levels: a demotion, not a RecursionError
