"""Reuse a part of the previous version when its inputs have not changed.

Training Word2Vec or item2vec costs minutes; a rebuild whose corpus or behaviour log did not change should not
pay for it again. Each reusable part records a fingerprint of everything it was built from in
`<part>/inputs.sha256`; a later build with the same fingerprint copies the part from the published version
instead of retraining. The copy is byte-identical, so the new manifest's checksums hold.

A part is copied only when the previous version is of the current artifact format (a part of an older format
is rebuilt, so a format change reaches every rebuilt version) and its files still match the previous
manifest: the new manifest checksums what was copied, so copying a damaged file would launder it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from indexer.artifact import FORMAT_VERSION, ArtifactError, read_manifest, verify_checksums

FINGERPRINT_FILE = "inputs.sha256"


def fingerprint(
    settings: object, token_lists: Iterable[Sequence[str]] = (), arrays: Iterable[np.ndarray] = ()
) -> str:
    """sha256 over JSON settings, token lists (with separators) and arrays (dtype, shape and bytes)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for tokens in token_lists:
        digest.update("\x1f".join(tokens).encode())
        digest.update(b"\x1e")
    for array in arrays:
        array = np.ascontiguousarray(array)
        if array.dtype == object:
            digest.update("\x1f".join(map(str, array.tolist())).encode())
        else:
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def reuse_part(previous: Path | None, name: str, staging: Path, inputs: str) -> dict | None:
    """Copy part `name` from the previous version when it was built from the same inputs; return its
    manifest parameters, or None when it must be rebuilt."""
    if previous is None:
        return None
    source = previous / name
    recorded = source / FINGERPRINT_FILE
    if not recorded.is_file() or recorded.read_text().strip() != inputs:
        return None
    try:
        manifest = read_manifest(previous, verify=False)
        if manifest["format_version"] != FORMAT_VERSION:
            return None
        verify_checksums(previous, manifest, under=name)
    except ArtifactError:  # damaged: build the part again rather than copy the damage
        return None
    params = manifest["params"].get(name)
    if params is None:
        return None
    shutil.copytree(source, staging / name)
    return params


def record_inputs(part: Path, inputs: str) -> None:
    """Remember what `part` was built from, for the next build."""
    if part.is_dir():
        (part / FINGERPRINT_FILE).write_text(inputs + "\n")
