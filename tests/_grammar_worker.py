"""Run in a subprocess by tests/test_hostile_local.py: patterns through the embedded model's grammar path.

stdin: {"mode": "guarded" | "raw", "schemas": [...]}. Each schema becomes a grammar that is loaded into a real llama.cpp sampler chain over the model's vocabulary (loaded alone: no
weights) and applied to a few candidate tokens, as generation does. "guarded" takes the grammar
extract.local would use; "raw" takes llama-cpp-python's own conversion unchecked (the path that crashed).
A grammar llama.cpp refuses makes its sampler NULL and applying the chain is then the original segfault; a
grammar nested thousands of groups deep overflows the C parser's stack before that. Either way the parent
sees the exit code. stdout: how many schemas ended at each grammar level.
"""

from __future__ import annotations

import ctypes
import json
import sys
from collections import Counter
from typing import Any

import llama_cpp
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from extract._local._find import find_model
from extract._local._grammar import choose_grammar

_CANDIDATES = 256  # tokens offered to the chain: enough to run the grammar, cheap per pattern


def _vocab() -> Any:
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(find_model()).encode(), params)
    if not model:
        raise SystemExit("could not load the model's vocabulary")
    return llama_cpp.llama_model_get_vocab(model)


VOCAB = _vocab()


def _engine_accepts(text: str) -> bool:
    sampler = llama_cpp.llama_sampler_init_grammar(VOCAB, text.encode("utf-8"), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def _load_into_chain(text: str) -> None:
    """What llama-cpp-python does with a grammar when generating (a NULL sampler crashes the apply)."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(
        chain, llama_cpp.llama_sampler_init_grammar(VOCAB, text.encode("utf-8"), b"root")
    )
    tokens = (llama_cpp.llama_token_data * _CANDIDATES)()
    for index in range(_CANDIDATES):
        tokens[index].id, tokens[index].logit = index, 0.0
    candidates = llama_cpp.llama_token_data_array(data=tokens, size=_CANDIDATES, selected=-1, sorted=False)
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(candidates))
    llama_cpp.llama_sampler_free(chain)


def main() -> None:
    request = json.load(sys.stdin)
    levels: Counter[str] = Counter()
    for schema in request["schemas"]:
        if request["mode"] == "raw":
            _load_into_chain(json_schema_to_gbnf(json.dumps(schema)))
            levels["raw"] += 1
            continue
        grammar = choose_grammar(
            schema, convert=json_schema_to_gbnf, json_grammar=JSON_GBNF, accepts=_engine_accepts
        )
        if grammar.text is not None:
            _load_into_chain(grammar.text)
        levels[grammar.level] += 1
        levels["pattern left out"] += any(note.startswith("pattern ") for note in grammar.notes)
    json.dump(dict(levels), sys.stdout)


if __name__ == "__main__":
    main()
