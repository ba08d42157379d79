"""The peer of the HTTP load benchmark: a txtai hybrid index of a BEIR corpus behind one FastAPI route.

`build(corpus, root)` indexes every document ("title abstract") with txtai's `hybrid` configuration
(BM25 + dense vectors, scores fused) and the packaged all-MiniLM-L6-v2, nothing downloaded, and publishes
it as ``root/index`` with a ``root/bench.json`` naming what it was built from; a later call with the same
corpus and configuration reuses it. Run as a script, this module serves such an index:

    python bench/txtai_peer.py --index ROOT --host 127.0.0.1 --port 8100

with ``POST /search {"query": ..., "k": 10}`` → ``{"results": Embeddings.search(query, k)}`` (each result
``{"id", "text", "score"}``), answered from FastAPI's thread pool as txtai's own API does, and
``GET /readyz`` (uvicorn accepts connections only once the index is loaded).

One change to txtai as installed: its content store shares one SQLite cursor between threads, and
concurrent searches there fail ("Recursive use of cursors not allowed") or crash the process
(segmentation fault; txtai 9.14.0, Python 3.11.7, 8 threads), so the content lookup
(`Embeddings.database.search`) runs under a lock. Query encoding and the BM25 and vector searches still run
concurrently; with the lock, 8 threads give the same answers as one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.encoders.base import hub_offline, packaged_model_dir

MAXLENGTH = 256
INDEX = "index"
RECORD = "bench.json"


def embeddings_config() -> dict[str, Any]:
    """txtai's hybrid configuration with the packaged MiniLM (expanded by txtai to BM25 + faiss)."""
    return {"path": str(packaged_model_dir()), "content": True, "hybrid": True, "maxlength": MAXLENGTH}


def documents(corpus: Path) -> Iterator[dict[str, str]]:
    """BEIR `corpus.jsonl` rows as txtai documents, the title and abstract joined by a space."""
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                yield {"id": str(row["_id"]), "text": f"{row.get('title', '')} {row['text']}".strip()}


def _fingerprint(corpus: Path) -> dict[str, str]:
    return {
        "corpus_sha256": hashlib.sha256(corpus.read_bytes()).hexdigest(),
        "config": json.dumps({**embeddings_config(), "path": "packaged all-MiniLM-L6-v2"}, sort_keys=True),
        "txtai": metadata.version("txtai"),
    }


def build(corpus: Path, root: Path) -> bool:
    """Index `corpus` into ``root/index`` unless an index of the same corpus and configuration is there;
    True when it built one. A build goes to a temporary folder and is moved in place when complete."""
    hub_offline()
    wanted = _fingerprint(corpus)
    record = root / RECORD
    if (root / INDEX).is_dir() and record.is_file() and json.loads(record.read_text()) == wanted:
        return False
    from txtai import Embeddings

    root.mkdir(parents=True, exist_ok=True)
    staging = root / f"{INDEX}.building"
    shutil.rmtree(staging, ignore_errors=True)
    embeddings = Embeddings(embeddings_config())
    embeddings.index(documents(corpus))
    embeddings.save(str(staging))
    embeddings.close()
    record.unlink(missing_ok=True)
    shutil.rmtree(root / INDEX, ignore_errors=True)
    staging.rename(root / INDEX)
    record.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    return True


def serialize_content_lookups(embeddings: Any) -> None:
    """Run the content store's searches one at a time (they share one SQLite cursor)."""
    lock = threading.Lock()
    lookup = embeddings.database.search

    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return lookup(*args, **kwargs)

    embeddings.database.search = locked


class SearchBody(BaseModel):
    query: str = Field(..., min_length=1)
    k: int = Field(10, ge=1, le=1000)


def create_app(index: Path) -> FastAPI:
    """The FastAPI app serving the txtai index saved at `index`, loaded in its lifespan."""
    from txtai import Embeddings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        embeddings = Embeddings()
        embeddings.load(str(index))
        serialize_content_lookups(embeddings)
        app.state.embeddings = embeddings
        yield
        embeddings.close()

    app = FastAPI(title="txtai peer", lifespan=lifespan)

    @app.post("/search")
    def search(body: SearchBody, request: Request) -> dict[str, list[dict[str, Any]]]:
        return {"results": request.app.state.embeddings.search(body.query, body.k)}

    @app.get("/readyz")
    def readyz() -> dict[str, bool]:
        return {"ready": True}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a txtai index built by build().")
    parser.add_argument("--index", type=Path, required=True, help="the root build() wrote")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    hub_offline()
    import uvicorn

    uvicorn.run(create_app(args.index / INDEX), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
