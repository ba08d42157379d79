"""Kill safety: `searchrec build` killed with SIGKILL at random moments never changes what is served.

A real build of a tiny corpus runs in a subprocess and is killed at a seeded random moment within its
measured duration, ten times in a row. After each kill the current version, the files it holds and what
`Collection.load(root)` answers must be unchanged; the next build removes the debris and succeeds.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from indexer.artifact import read_manifest
from indexer.encoder import Encoder
from indexer.versions import STAGING_PREFIX, VersionStore
from retrieval.collection import Collection

KILLS = 10
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "river", "stone", "cloud"]
QUERY = "gamma river"


def _corpus(path: Path) -> Path:
    rng = random.Random(0)
    lines = []
    for i in range(40):
        text = " ".join(rng.choice(WORDS) for _ in range(12))
        lines.append(json.dumps({"id": f"d{i}", "title": f"note {i}", "text": text}) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _start_build(corpus: Path, root: Path) -> subprocess.Popen:
    code = "from api.cli import app; app()"
    command = [
        sys.executable,
        "-c",
        code,
        "build",
        "--corpus",
        str(corpus),
        "--out",
        str(root),
        "--no-progress",
    ]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )


def _snapshot(root: Path, encoder: Encoder) -> tuple[str, dict, list[int], list[float]]:
    """Current version, its file checksums, and the BM25 answer served from it."""
    collection = Collection.load(root, encoder=encoder)  # verifies every checksum
    try:
        rows, scores = collection.inverted.search(collection.query_terms(QUERY), 5)
        files = read_manifest(collection.path)["files"]
        return collection.version, files, rows.tolist(), np.round(scores, 5).tolist()
    finally:
        collection.close()


def _time_to_publish(corpus: Path, root: Path) -> float:
    """Run one build to the end; return the seconds until it replaced CURRENT."""
    before = VersionStore(root).current_name()
    start, published = time.perf_counter(), None
    process = _start_build(corpus, root)
    while process.poll() is None:
        if published is None and VersionStore(root).current_name() != before:
            published = time.perf_counter() - start
        time.sleep(0.02)
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""
    return published or time.perf_counter() - start


def test_sigkill_at_random_moments_never_changes_the_served_version(tmp_path: Path, encoder: Encoder) -> None:
    corpus, root = _corpus(tmp_path / "items.jsonl"), tmp_path / "idx"
    _time_to_publish(corpus, root)  # cold: fills the embedding cache
    duration = _time_to_publish(corpus, root)  # warm, like every build below: kills land within it
    served = _snapshot(root, encoder)
    rng = random.Random(0)
    killed_before_publish = 0
    for _ in range(KILLS):
        process = _start_build(corpus, root)
        time.sleep(rng.uniform(0.0, duration))
        process.kill()
        process.wait(timeout=60)
        if VersionStore(root).current_name() == served[0]:
            killed_before_publish += 1
            assert _snapshot(root, encoder) == served
        else:  # killed after publishing: the new version must be complete and answer the same
            now = _snapshot(root, encoder)
            assert (now[1].keys(), now[2], now[3]) == (served[1].keys(), served[2], served[3])
            served = now
    assert killed_before_publish >= 1

    _time_to_publish(corpus, root)
    assert not list((root / "versions").glob(f"{STAGING_PREFIX}*")), "debris of killed builds is left"
    version, files, rows, scores = _snapshot(root, encoder)
    assert version != served[0]
    assert (files.keys(), rows, scores) == (served[1].keys(), served[2], served[3])  # same input, same answer
