"""Extraction over a Ray Dataset on one machine: local Ray, the loopback test server, no API key needed.

    pip install "extract-llm[ray]"
    python examples/ray_local.py [--docs 200]

Against a real provider, drop the TestServer and pass model= (and base_url= for a non-default endpoint);
the key comes from the driver's environment (e.g. CEREBRAS_API_KEY) and reaches the workers masked.
"""

from __future__ import annotations

import argparse
import tempfile

import ray
from pydantic import BaseModel

import extract.ray
from extract.testing import TestServer


class Person(BaseModel):
    name: str
    age: int
    city: str


def main(docs: int = 200) -> int:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    texts = [
        {"id": i, "body": f"Note {i}: Ada Lovelace, aged {20 + i % 50}, lives in London."}
        for i in range(docs)
    ]
    with TestServer(latency=0.05) as server, tempfile.TemporaryDirectory() as checkpoint:
        options = {"base_url": server.base_url, "api_key": "sk-test", "model": "llama3.1-8b"}

        def run() -> list[dict[str, object]]:
            ds = ray.data.from_items(texts)
            out = extract.ray.extract_dataset(
                ds,
                Person,
                text_column="body",
                concurrency=2,  # actors
                per_worker_concurrency=16,  # requests in flight in each actor
                output=checkpoint,  # finished documents are kept here: reruns and task retries skip them
                **options,
            )
            return out.take_all()  # or out.write_parquet("people/"): the dataset is lazy until then

        rows = run()
        sent = server.request_count
        print(f"{len(rows)} rows, {sum(1 for r in rows if r['error'])} errors, {sent} requests sent")
        for row in sorted(rows, key=lambda r: int(r["id"]))[:3]:
            print({k: row[k] for k in ("id", "name", "age", "city", "error")})
        run()  # the same job again: every document is already in the checkpoint
        print(f"rerun sent {server.request_count - sent} requests")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    raise SystemExit(main(parser.parse_args().docs))
