"""The `extract` command: help, exit codes, one-line messages, and `extract schema`.

Commands run in-process through `extract.cli.main` (argv in, exit code out); servers are real HTTP on
127.0.0.1 (extract.testing.TestServer).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from extract.cli import main
from extract.cli._demo import demo_inputs
from extract.testing import TestServer

_ENV = ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL", "EXTRACT_LOCAL_MODEL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exits (--help, usage errors)
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("extract: error: ")
    assert "Traceback" not in err
    return lines[0]


# ---- help -----------------------------------------------------------------------------------------


def test_help_has_description_examples_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "usage: extract" in out
    assert "examples:" in out
    assert "extract demo" in out
    for line in (
        "0  success",
        "1  extraction failed",
        "2  usage error",
        "3  configuration",
        "4  server or API",
    ):
        assert line in out
    for option in ("--model", "--base-url", "--provider", "--debug", "--quiet"):
        assert option in out


@pytest.mark.parametrize("command", ["demo", "schema"])
def test_subcommand_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"usage: extract {command}" in out
    assert "exit codes:" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2
    assert out == ""
    assert "usage: extract" in err


def test_the_key_is_never_a_command_line_argument(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--api-key", "sk-secret")
    assert code == 2
    assert "unrecognized arguments: --api-key" in err


# ---- extract schema -------------------------------------------------------------------------------


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "person.json"
    path.write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 2},
                    "age": {"type": "integer", "minimum": 0},
                },
                "required": ["name"],
            }
        )
    )
    return path


def test_schema_prints_the_wire_schema_and_the_relaxations(
    capsys: pytest.CaptureFixture[str], schema_file: Path
) -> None:
    from extract.schema import compile_schema

    code, out, err = run(capsys, "schema", str(schema_file))
    assert code == 0
    compiled = compile_schema(json.loads(schema_file.read_text()), provider="cerebras")
    assert json.loads(out) == compiled.wire_schema
    assert out.startswith("{\n  ")  # indented for reading
    assert compiled.relaxations  # minLength and minimum are outside Cerebras' strict subset
    for relaxation in compiled.relaxations:
        assert relaxation.keyword in err


def test_schema_json_output_and_provider_option(
    capsys: pytest.CaptureFixture[str], schema_file: Path
) -> None:
    from extract.schema import compile_schema

    code, out, _ = run(capsys, "schema", str(schema_file), "--provider", "openai", "--json")
    assert code == 0
    document = json.loads(out)
    compiled = compile_schema(json.loads(schema_file.read_text()), provider="openai")
    assert document["provider"] == "openai"
    assert document["wire_schema"] == compiled.wire_schema
    assert document["strict"] == compiled.strict
    assert document["relaxations"] == [
        {"path": r.path, "keyword": r.keyword, "reason": r.reason} for r in compiled.relaxations
    ]


def test_global_provider_before_the_subcommand_counts_too(
    capsys: pytest.CaptureFixture[str], schema_file: Path
) -> None:
    code, out, _ = run(capsys, "--provider", "openai", "schema", str(schema_file), "--json")
    assert code == 0
    assert json.loads(out)["provider"] == "openai"


def test_schema_profile_follows_the_engine_for_a_base_url(
    capsys: pytest.CaptureFixture[str], schema_file: Path
) -> None:
    from extract.providers import PROVIDERS

    code, out, _ = run(capsys, "--base-url", "http://127.0.0.1:9/v1", "schema", str(schema_file), "--json")
    assert code == 0
    document = json.loads(out)
    assert document["provider"] == "generic"
    assert document["profile"] == PROVIDERS["generic"].profile.name


@pytest.fixture
def model_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module `cli_models_<n>` in the current directory with a pydantic model, as a user project has."""
    name = f"cli_models_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel, Field

            class Invoice(BaseModel):
                number: str
                total: float = Field(ge=0)

            class Outer:
                class Inner(BaseModel):
                    code: str
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield name
    sys.modules.pop(name, None)


def test_schema_from_module_and_model(capsys: pytest.CaptureFixture[str], model_module: str) -> None:
    code, out, err = run(capsys, "schema", f"{model_module}:Invoice")
    assert code == 0, err
    wire = json.loads(out)
    assert set(wire["properties"]) == {"number", "total"}
    assert "minimum" in err  # ge=0 cannot go to Cerebras strict mode; it is still validated


def test_schema_from_nested_attribute(capsys: pytest.CaptureFixture[str], model_module: str) -> None:
    code, out, _ = run(capsys, "schema", f"{model_module}:Outer.Inner")
    assert code == 0
    assert set(json.loads(out)["properties"]) == {"code"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("no/such/file.json", "no such schema file: no/such/file.json"),
        ("missing.json", "no such schema file: missing.json"),
        ("no_such_module_xyz:Model", "cannot import module 'no_such_module_xyz'"),
        ("json:NoSuchModel", "module 'json' has no attribute 'NoSuchModel'"),
        ("plainword", "neither a JSON file nor package.module:Model"),
    ],
)
def test_bad_schema_sources_are_usage_errors(
    capsys: pytest.CaptureFixture[str], source: str, expected: str
) -> None:
    code, out, err = run(capsys, "schema", source)
    assert code == 2
    assert out == ""
    assert expected in _one_error_line(err)


def test_schema_file_that_is_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"type": "object", ')
    code, _, err = run(capsys, "schema", str(path))
    assert code == 2
    line = _one_error_line(err)
    assert str(path) in line
    assert "not valid JSON" in line


def test_invalid_schema_names_the_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "dangling.json"
    path.write_text(
        json.dumps(
            {"type": "object", "properties": {"owner": {"$ref": "#/$defs/Missing"}}, "required": ["owner"]}
        )
    )
    code, _, err = run(capsys, "schema", str(path))
    assert code == 2
    line = _one_error_line(err)
    assert "Missing" in line
    assert "#/properties/owner" in line


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "schema", "missing.json")
    assert code == 2
    assert "Traceback" in err
    assert err.strip().splitlines()[-1] == "extract: error: no such schema file: missing.json"


# ---- servers: unreachable, bad key, success, failed extraction ------------------------------------


def test_unreachable_server_is_exit_4(capsys: pytest.CaptureFixture[str], closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/v1"
    code, out, err = run(capsys, "--base-url", url, "--model", "m", "demo")
    assert code == 4
    assert out == ""
    line = _one_error_line(err)
    assert f"could not reach {url}" in line


def test_bad_key_is_exit_4_and_the_key_is_not_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-key-0123456789"
    with TestServer(api_key="sk-right-key") as server:
        monkeypatch.setenv("CEREBRAS_BASE_URL", server.base_url)
        monkeypatch.setenv("CEREBRAS_API_KEY", wrong)
        code, out, err = run(capsys, "--model", "llama3.1-8b", "demo")
    assert code == 4
    assert out == ""
    line = _one_error_line(err)
    assert "HTTP 401" in line
    assert "CEREBRAS_API_KEY" in line
    assert wrong not in err


def test_demo_against_a_server_prints_a_valid_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestServer(api_key="sk-right-key") as server:
        monkeypatch.setenv("CEREBRAS_BASE_URL", server.base_url)
        monkeypatch.setenv("CEREBRAS_API_KEY", "sk-right-key")
        code, out, err = run(capsys, "--model", "llama3.1-8b", "demo")
        sent = server.requests
    assert code == 0, err
    schema, text = demo_inputs()
    jsonschema.validate(json.loads(out), schema)
    assert "embedded local model" not in err
    assert text.strip() in json.dumps(sent[0]["messages"], ensure_ascii=False).replace("\\n", "\n")


def test_every_attempt_invalid_is_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestServer() as server:
        server.script("invalid_json", "invalid_json", "invalid_json", "invalid_json")
        code, out, err = run(capsys, "--base-url", server.base_url, "--model", "llama3.1-8b", "demo")
    assert code == 1
    assert out == ""
    assert err.startswith("extract: error: no valid reply")
    assert "Traceback" not in err


def test_no_key_and_no_local_model_is_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EXTRACT_LOCAL_MODEL", str(tmp_path / "absent.gguf"))
    code, out, err = run(capsys, "demo")
    assert code == 3
    assert out == ""
    assert "EXTRACT_LOCAL_MODEL" in _one_error_line(err)


def test_quiet_keeps_stdout_and_errors_only(capsys: pytest.CaptureFixture[str], schema_file: Path) -> None:
    code, out, err = run(capsys, "schema", str(schema_file), "--quiet")
    assert code == 0
    json.loads(out)
    assert err == ""


def test_library_warnings_become_one_line_notes(capsys: pytest.CaptureFixture[str]) -> None:
    with TestServer(flavor="llamacpp") as server:
        code, out, err = run(capsys, "--base-url", server.base_url, "--model", "any", "demo", "--show-input")
    assert code == 0, err
    schema, text = demo_inputs()
    jsonschema.validate(json.loads(out), schema)
    assert text.strip() in err  # --show-input
    notes = [line for line in err.splitlines() if "refused output mode json_schema" in line]
    assert len(notes) == 1
    assert notes[0].startswith("extract: ")


def test_quiet_silences_library_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    with TestServer(flavor="llamacpp") as server:
        code, out, err = run(capsys, "--quiet", "--base-url", server.base_url, "--model", "any", "demo")
    assert code == 0
    json.loads(out)
    assert err == ""


def test_main_leaves_the_callers_logging_as_it_was(
    capsys: pytest.CaptureFixture[str], schema_file: Path
) -> None:
    import logging

    logger = logging.getLogger("extract")
    before = (logger.level, logger.propagate, list(logger.handlers))
    assert run(capsys, "--debug", "schema", str(schema_file))[0] == 0
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


def test_help_example_without_model_says_model_option(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--base-url", "http://127.0.0.1:9/v1", "demo"])
    err = capsys.readouterr().err
    assert code == 3
    assert "--model" in err and "model=" not in err


def test_local_model_override_is_named(tmp_path: Path) -> None:
    gguf = tmp_path / "Qwen-Tiny.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBRAS_")}
    env["EXTRACT_LOCAL_MODEL"] = str(gguf)
    command = [sys.executable, "-c", "import sys; from extract.cli import main; sys.exit(main())", "--help"]
    done = subprocess.run(command, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0
    text = done.stdout.decode()
    assert "Qwen-Tiny.Q4.gguf" in text and "SmolLM2" not in text


def test_local_note_names_the_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extract.cli._common import LOCAL_NOTE, local_note

    assert local_note() == LOCAL_NOTE and "SmolLM2-135M" in LOCAL_NOTE
    monkeypatch.setenv("EXTRACT_LOCAL_MODEL", str(tmp_path / "Qwen-Tiny.Q4.gguf"))
    assert "Qwen-Tiny.Q4.gguf" in local_note() and "SmolLM2" not in local_note()


def test_library_wording_becomes_command_line_wording() -> None:
    from extract.cli._common import cli_wording

    assert (
        cli_wording("no model given for X: pass model='...' (the name)")
        == "no model given for X: pass --model NAME (the name)"
    )
    assert cli_wording("check base_url and the network") == "check --base-url and the network"
    assert cli_wording("within the timeout (x); raise timeout= or try again") == (
        "within the timeout (x); raise --timeout or try again"
    )
    assert cli_wording("CEREBRAS_BASE_URL stays") == "CEREBRAS_BASE_URL stays"


def test_timeout_option_reaches_the_requests(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with TestServer(latency=5) as server:
        code = main(["--base-url", server.base_url, "--model", "llama3.1-8b", "--timeout", "0.3", "demo"])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "--timeout" in err and "timeout=" not in err


def test_timeout_option_must_be_positive_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--timeout", "-1", "demo"])
    assert stop.value.code == 2
    assert "positive number of seconds" in capsys.readouterr().err
