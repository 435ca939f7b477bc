"""Why the embedded-model tests must skip here, if they must (None when llama.cpp and the GGUF are installed)."""

from __future__ import annotations

import importlib.util

from extract.errors import ConfigurationError


def local_model_missing() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return 'llama-cpp-python is not installed (pip install "extract-llm[local]")'
    from extract._local._find import find_model

    try:
        find_model()
    except ConfigurationError as exc:
        return f"no local model: {exc}"
    return None
