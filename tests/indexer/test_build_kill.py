"""Kill safety: `searchrec build` killed with SIGKILL at any step never changes what is served.

A real build of a tiny corpus runs in a subprocess that kills itself at one named crash point
(`indexer.crash_points`: the start of every build stage and every step of publishing), one point per run,
in the order a build reaches them. After each kill the current version, the files it holds and what
`Collection.load(root)` answers must be those of a complete version: the old one when the kill came before
publishing, else a new one answering the same; the next build removes the debris and succeeds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from indexer.artifact import read_manifest
from indexer.crash_points import CRASH_AT_ENV
from indexer.encoders.torch import Encoder
from indexer.versions import RETIRED_PREFIX, STAGING_PREFIX, VersionStore
from retrieval.collection import Collection

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "river", "stone", "cloud"]
QUERY = "gamma river"
STAGES = ["read", "analyze+bm25", "keywords+columns", "docstore", "encode", "ann", "word2vec", "manifest"]
BEFORE_PUBLISH = [*(f"build:{s}" for s in STAGES), "version:staged", "version:final", "publish:written"]
AFTER_PUBLISH = ["version:published", "prune:retired"]
DEBRIS = (STAGING_PREFIX, RETIRED_PREFIX)


def _corpus(path: Path) -> Path:
    rng = random.Random(0)
    lines = []
    for i in range(40):
        text = " ".join(rng.choice(WORDS) for _ in range(12))
        lines.append(json.dumps({"id": f"d{i}", "title": f"note {i}", "text": text}) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _build(
    corpus: Path, root: Path, config: Path, crash_at: str | None = None
) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-c", "from api.cli import app; app()", "build", "--corpus", str(corpus),
        "--out", str(root), "--config", str(config), "--no-progress",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT_ENV}
    if crash_at is not None:
        env[CRASH_AT_ENV] = crash_at
    return subprocess.run(command, capture_output=True, env=env, cwd=Path(__file__).parents[2], timeout=600)


def _snapshot(root: Path, encoder: Encoder) -> tuple[str, dict, list[int], list[float]]:
    """Current version, its file checksums, and the BM25 answer served from it."""
    collection = Collection.load(root, encoder=encoder)  # verifies every checksum
    try:
        rows, scores = collection.inverted.search(collection.query_terms(QUERY), 5)
        files = read_manifest(collection.path)["files"]
        return collection.version, files, rows.tolist(), np.round(scores, 5).tolist()
    finally:
        collection.close()


def test_sigkill_at_every_crash_point_never_changes_the_served_version(
    tmp_path: Path, encoder: Encoder
) -> None:
    corpus, root = _corpus(tmp_path / "items.jsonl"), tmp_path / "idx"
    config = tmp_path / "build.toml"
    config.write_text("keep_versions = 1\n")  # every publish prunes the previous version: prune:* is reached
    first = _build(corpus, root, config)
    assert first.returncode == 0, first.stderr.decode()
    served = _snapshot(root, encoder)
    for point in BEFORE_PUBLISH:
        killed = _build(corpus, root, config, crash_at=point)
        assert killed.returncode == -signal.SIGKILL, f"{point} was never reached: {killed.stderr.decode()}"
        assert _snapshot(root, encoder) == served, f"killed at {point}"
    for point in AFTER_PUBLISH:
        killed = _build(corpus, root, config, crash_at=point)
        assert killed.returncode == -signal.SIGKILL, f"{point} was never reached: {killed.stderr.decode()}"
        now = _snapshot(root, encoder)  # a new, complete version that answers the same
        assert now[0] != served[0], f"killed at {point}"
        assert (now[1].keys(), now[2], now[3]) == (served[1].keys(), served[2], served[3]), point
        served = now

    last = _build(corpus, root, config)
    assert last.returncode == 0, last.stderr.decode()
    debris = [p.name for p in (root / "versions").iterdir() if p.name.startswith(DEBRIS)]
    assert not debris, f"debris of killed builds is left: {debris}"
    assert [v.name for v in VersionStore(root).published()] == [VersionStore(root).current_name()]
    version, files, rows, scores = _snapshot(root, encoder)
    assert version != served[0]
    assert (files.keys(), rows, scores) == (served[1].keys(), served[2], served[3])  # same input, same answer
