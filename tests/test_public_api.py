"""The public face: every exported name resolves, errors form one tree, and importing stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import extract
from extract import errors


@pytest.mark.parametrize("name", extract.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(extract, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        extract.nope  # noqa: B018


def test_every_error_is_an_extract_error() -> None:
    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    exceptions = [c for c in classes if issubclass(c, BaseException)]
    assert len(exceptions) >= 14
    assert all(issubclass(c, extract.ExtractError) for c in exceptions)


def test_import_does_not_load_heavy_optional_modules() -> None:
    code = "import sys, extract; print(sorted(m for m in ('pandas', 'llama_cpp', 'tqdm', 'jsonschema') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
