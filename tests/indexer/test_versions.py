"""Versioned roots: atomic publish, failed builds leave nothing visible, debris cleanup, prune, rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

import indexer.versions as versions_module
from indexer.artifact import ArtifactError, read_manifest, rewrite_manifest, write_manifest
from indexer.versions import STAGING_PREFIX, VersionStore, resolve_artifact


def _build(store: VersionStore, payload: str, **kwargs: object) -> str:
    with store.build(**kwargs) as (name, staging):
        (staging / "data.txt").write_text(payload)
        write_manifest(staging, kind="test", params={"payload": payload})
    return name


def test_build_publishes_and_resolves(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    name = _build(store, "one")
    assert store.current_name() == name
    assert resolve_artifact(tmp_path) == tmp_path / "versions" / name
    assert (resolve_artifact(tmp_path) / "data.txt").read_text() == "one"


def test_failed_build_leaves_current_untouched(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    good = _build(store, "good")
    with pytest.raises(RuntimeError, match="boom"), store.build() as (_, staging):
        (staging / "data.txt").write_text("half")
        raise RuntimeError("boom")
    assert store.current_name() == good
    assert [v.name for v in store.published()] == [good]
    assert not list((tmp_path / "versions").glob(f"{STAGING_PREFIX}*"))


def test_build_without_manifest_is_refused(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    with pytest.raises(ArtifactError, match=r"without writing manifest\.json"), store.build() as (_, staging):
        (staging / "data.txt").write_text("no manifest")
    assert store.current_name() is None


def test_debris_of_a_killed_build_is_cleaned_by_the_next(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    debris = tmp_path / "versions" / f"{STAGING_PREFIX}20000101T000000Z-dead00"
    debris.mkdir(parents=True)
    (debris / "partial.npy").write_bytes(b"\0" * 10)
    _build(store, "next")
    assert not debris.exists()


def test_prune_keeps_the_newest_and_rollback_republishes(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    names = [_build(store, str(i), keep=2) for i in range(3)]
    assert [v.name for v in store.published()] == names[1:]
    store.publish(names[1])
    assert store.current_name() == names[1]
    with pytest.raises(ArtifactError, match="known versions"):
        store.publish("no-such-version")


def test_a_prune_that_dies_midway_leaves_no_half_deleted_published_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = VersionStore(tmp_path)
    names = [_build(store, str(i), keep=5) for i in range(3)]

    def dies(path: Path, *args: object, **kwargs: object) -> None:
        (Path(path) / "data.txt").unlink()  # half of the files are gone when the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(versions_module.shutil, "rmtree", dies)
    with pytest.raises(KeyboardInterrupt):
        store.prune(keep=2)
    monkeypatch.undo()
    assert [v.name for v in store.published()] == names[1:]  # the half-deleted one is not published
    assert store.current_name() == names[2]
    _build(store, "next", keep=5)  # the next build removes the debris
    assert not list(store.versions_dir.glob(".*"))
    assert [v.name for v in store.published()][:2] == names[1:]


def test_root_without_a_published_version_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no published version"):
        resolve_artifact(tmp_path)


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    _build(store, "original")
    path = store.current()
    (path / "data.txt").write_text("tampered")
    with pytest.raises(ArtifactError, match=r"checksum mismatch for data\.txt"):
        read_manifest(path)


def test_newer_format_is_refused(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    _build(store, "x")
    manifest = read_manifest(store.current())
    rewrite_manifest(store.current(), {**manifest, "format_version": 99})
    with pytest.raises(ArtifactError, match="format version 99"):
        read_manifest(store.current())
