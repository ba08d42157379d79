"""Reproducible builds: the same input, configuration and seed build the same version in another process.

The SciFact slice (with a synthetic behaviour log, so item2vec is trained too) is built here and again in a
subprocess with another PYTHONHASHSEED and a fresh embedding cache (so the encoder runs there). The two
versions must not differ in any part (`indexer.version_diff`): BM25 bytes, forward-index records, vectors,
ANN files and answers, Word2Vec, item2vec, manifest. The diff itself is checked on a doctored copy.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from api.cli import app
from indexer.ann import load_index
from indexer.artifact import read_manifest, write_manifest
from indexer.build import build_collection
from indexer.config import BuildConfig
from indexer.docstore import DocStore
from indexer.encoders.embedding_cache import CachedEncoder
from indexer.encoders.torch import Encoder
from indexer.version_diff import diff_versions
from indexer.versions import resolve_artifact
from tests.conftest import SCIFACT, SLICE_DOCS

REPO = Path(__file__).resolve().parents[2]
# Builds the slice into argv[2] with the same encoder settings as the `encoder` fixture; prints its hash salt.
_BUILD = """
import sys
from pathlib import Path
from indexer.build import build_collection
from indexer.config import BuildConfig
from indexer.encoders.embedding_cache import CachedEncoder
from indexer.encoders.torch import Encoder
corpus, root, limit, events, cache = sys.argv[1:]
encoder = CachedEncoder(Encoder(batch_size=32), Path(cache))
build_collection(Path(corpus), Path(root), BuildConfig(limit=int(limit)), behaviour=Path(events),
                 encoder=encoder, progress=False)
print(hash("searchrec"))
"""
PARTS = {"ids.txt", "bm25", "keywords", "docstore", "dense", "word2vec", "behaviour"}


def _events(path: Path) -> Path:
    """40 users with 15 events each over the slice's documents, at distinct times."""
    ids = [json.loads(line)["_id"] for line in (SCIFACT / "corpus.jsonl").open()][:SLICE_DOCS]
    rng = random.Random(0)
    rows = [
        f"u{user},{rng.choice(ids)},{1_700_000_000 + 1000 * user + event}"
        for user in range(40)
        for event in range(15)
    ]
    path.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _build_elsewhere(root: Path, events: Path, cache: Path) -> int:
    """Build in a new process whose str hash is salted differently from this one; return its hash."""
    salt = os.environ.get("PYTHONHASHSEED", "")
    env = {**os.environ, "PYTHONHASHSEED": str(int(salt) + 1) if salt.isdigit() else "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    args = [str(SCIFACT), str(root), str(SLICE_DOCS), str(events), str(cache)]
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


def test_a_second_process_builds_the_same_version(
    tmp_path: Path, encoder: Encoder, slice_embeddings: Path
) -> None:
    events = _events(tmp_path / "events.csv")
    here = build_collection(
        SCIFACT,
        tmp_path / "here",
        BuildConfig(limit=SLICE_DOCS),
        behaviour=events,
        encoder=CachedEncoder(encoder, slice_embeddings),
        progress=False,
    ).path
    other_hash = _build_elsewhere(tmp_path / "there", events, tmp_path / "fresh-cache")
    assert other_hash != hash("searchrec")  # Python's str hashing really was salted differently there
    there = resolve_artifact(tmp_path / "there")

    manifest = read_manifest(here)
    assert {Path(name).parts[0] for name in manifest["files"]} >= PARTS
    params = manifest["params"]
    assert params["word2vec"]["trained"] and params["behaviour"]["item2vec"]["trained"]
    assert diff_versions(here, there) == []
    # The same files answer the same: the ANN indices give the same rows and scores for the same queries.
    for part in ("dense", "word2vec/index"):
        first, second = load_index(here / part), load_index(there / part)
        queries = first.reconstruct(np.arange(0, SLICE_DOCS, 10))
        for got, expected in zip(second.search(queries, 10), first.search(queries, 10), strict=True):
            np.testing.assert_array_equal(got, expected)

    result = CliRunner().invoke(app, ["versions", "diff", str(tmp_path / "here"), str(there)])
    assert result.exit_code == 0 and result.output.startswith("identical"), result.output


def test_the_diff_names_each_part_that_differs(scifact_slice_root: Path, tmp_path: Path) -> None:
    original = resolve_artifact(scifact_slice_root)
    doctored = tmp_path / original.name
    shutil.copytree(original, doctored)
    bm25_file = next(p for p in sorted((doctored / "bm25").rglob("*")) if p.is_file() and p.suffix == ".npy")
    bm25_file.write_bytes(bm25_file.read_bytes() + b"\0")
    (doctored / "ids.txt").unlink()
    with DocStore.open(original / "docstore") as store:
        first_id = next(iter(store.ids()))
    with DocStore.open(doctored / "docstore", read_only=False) as store:
        store.db.put(first_id.encode(), b'{"title":"changed"}')
    manifest = read_manifest(original)
    params = {**manifest["params"], "n_docs": manifest["params"]["n_docs"] + 1}
    write_manifest(doctored, kind=manifest["kind"], params=params, parts=manifest["parts"])

    found = {(d.part, d.where): d.detail for d in diff_versions(original, doctored)}
    relative = str(bm25_file.relative_to(doctored))
    assert found.pop(("bm25", relative)) == "contents differ"
    assert found.pop(("ids.txt", "ids.txt")) == "only in the first version"
    assert found.pop(("docstore", "docstore")) == f"1 record(s) differ: {first_id!r}"
    assert found.pop(("manifest.json", "params.n_docs")) == f"{SLICE_DOCS} != {SLICE_DOCS + 1}"
    assert found == {}  # the RocksDB files the write changed are no difference; neither is created_at

    result = CliRunner().invoke(app, ["versions", "diff", str(original), str(doctored)])
    assert result.exit_code == 1 and f"bm25: {relative}: contents differ" in result.output
