"""`extract demo` as a user first runs it: a fresh process, no key, the embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from extract.cli._common import LOCAL_NOTE
from extract.cli._demo import demo_inputs
from tests._local_model import local_model_missing

_SKIP_REASON = local_model_missing()


@pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or "")
def test_demo_runs_offline_on_the_embedded_model() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"CEREBRAS_API_KEY", "CEREBRAS_BASE_URL"}}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from extract.cli import main; sys.exit(main())", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    schema, _ = demo_inputs()
    value = json.loads(done.stdout)
    jsonschema.validate(value, schema)
    # The text names Maria Lopez of Northwind Traders; a value that misses her name entirely is a broken demo.
    assert "Lopez" in value["name"]
    assert done.stderr.count(LOCAL_NOTE) == 1
    assert "Traceback" not in done.stderr


def test_demo_data_ships_inside_the_package() -> None:
    schema, text = demo_inputs()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert set(schema["required"]) == set(schema["properties"])
    assert 50 < len(text) < 2000
