"""Damaged artifacts: every kind of file of a collection or ranker version, a byte flipped or the file cut in
half, is refused by name when loaded, and a running service keeps serving the version it had.

Each kind is one file of a real small version (the SciFact slice, a shops collection with Word2Vec and a
behaviour log, rankers trained on random lists): copied, damaged, then loaded, reloaded or served.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import api.metrics  # noqa: F401 (imported before `serve` runs here: see tests/api/test_cli.py)
from api.app import create_app
from api.cli import app as cli
from indexer.artifact import MANIFEST, MANIFEST_CHECKSUM, ArtifactError, rewrite_manifest
from indexer.versions import VersionStore, resolve_artifact
from ranker.artifact import read_ranker
from retrieval.collection import Collection
from retrieval.registry import CollectionRegistry, ReloadFailedError, service_opener

TOKEN = "reload-token"
SCIFACT, SHOPS, RANKER = "scifact", "shops", "ranker"
# kind -> (which artifact, the damaged file relative to its version directory; a glob for the RocksDB table)
KINDS = {
    "bm25 postings": (SCIFACT, "bm25/content/doc_ids.npy"),
    "bm25 impacts": (SCIFACT, "bm25/content/impacts.npy"),
    "bm25 vocabulary": (SCIFACT, "bm25/content/vocab.json"),
    "ids": (SCIFACT, "ids.txt"),
    "dense vectors and HNSW graph": (SCIFACT, "dense/hnsw.bin"),
    "docstore table": (SCIFACT, "docstore/*.sst"),
    "word2vec vectors": (SCIFACT, "word2vec/model/vectors.npy"),
    "word2vec vocabulary": (SCIFACT, "word2vec/model/vocabulary.json"),
    "word2vec document index": (SCIFACT, "word2vec/index/hnsw.bin"),
    "manifest": (SCIFACT, MANIFEST),
    "behaviour histories": (SHOPS, "behaviour/rows.npy"),
    "behaviour popularity": (SHOPS, "behaviour/popularity.npy"),
    "item2vec vectors": (SHOPS, "behaviour/item2vec/item_vectors.npy"),
    "ranker model": (RANKER, "model/model.txt"),
    "ranker MLP weights": (RANKER, "model/weights.pt"),
    "ranker manifest": (RANKER, MANIFEST),
}


def flip(path: Path) -> None:
    """Invert the middle byte of the file."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    """Cut the file to half its size."""
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


DAMAGE: dict[str, Callable[[Path], None]] = {"flip": flip, "truncate": truncate}


def expected_problem(file: str, damage: str) -> str:
    """What the refusal says about `file` after `damage` (a regular expression)."""
    if file == MANIFEST:
        return r"manifest\.json is unreadable \(not (UTF-8 text|JSON)"
    name = file.replace(".", r"\.")
    return f"checksum mismatch for {name}" if damage == "flip" else f"{name} is truncated: "


def file_of(version: Path, pattern: str) -> str:
    """The file `pattern` names in `version`, relative to it."""
    (found,) = sorted(version.glob(pattern))
    return str(found.relative_to(version))


def copy_version(root: Path, source: Path, *, keep: int = 100) -> tuple[str, Path]:
    """Publish a copy of the version directory `source` under `root` as its new current version (what a
    rebuild with no change publishes); return its name and directory."""
    store = VersionStore(root)
    with store.build(keep=keep) as (name, staging):
        staging.rmdir()
        shutil.copytree(source, staging)
        manifest = json.loads((staging / MANIFEST).read_text(encoding="utf-8"))
        rewrite_manifest(staging, {**manifest, "parts": {**manifest["parts"], "version": name}})
    return name, store.versions_dir / name


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def sources(
    scifact_slice_root: Path, shops_w2v_root: Path, search_rankers: dict[str, Path]
) -> dict[str, Path]:
    return {SCIFACT: scifact_slice_root, SHOPS: shops_w2v_root, RANKER: search_rankers["lambdamart"]}


def _ranker_source(rankers: dict[str, Path], file: str) -> Path:
    """The ranker root holding `file`: the MLP's weights, else the LambdaMART ranker's files."""
    return rankers["listwise_mlp" if file.endswith(".pt") else "lambdamart"]


# ------------------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("kind", list(KINDS))
def test_loading_a_damaged_version_is_refused_naming_the_file(
    kind: str, damage: str, sources: dict[str, Path], search_rankers: dict[str, Path], tmp_path: Path
) -> None:
    artifact, pattern = KINDS[kind]
    source = _ranker_source(search_rankers, pattern) if artifact == RANKER else sources[artifact]
    root = tmp_path / "root"
    shutil.copytree(source, root)
    version = resolve_artifact(root)
    file = file_of(version, pattern)
    DAMAGE[damage](version / file)
    with pytest.raises(ArtifactError, match=expected_problem(file, damage)) as refused:
        read_ranker(root) if artifact == RANKER else Collection.load(root)
    assert str(refused.value).startswith(f"{version}: ") or str(refused.value).startswith(f"{version} ")
    assert (refused.value.path, refused.value.file) == (version, file)


def test_a_manifest_edited_in_place_fails_its_own_checksum(scifact_slice_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(scifact_slice_root, root)
    manifest = resolve_artifact(root) / MANIFEST
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace('"k1": 1.5', '"k1": 1.4', 1), encoding="utf-8")  # still valid JSON
    assert manifest.read_text(encoding="utf-8") != text
    with pytest.raises(ArtifactError, match=r"checksum mismatch for manifest\.json: its content differs"):
        Collection.load(root)


def test_a_format_1_version_is_read_unless_its_word2vec_vectors_are_a_pickle(
    shops_root: Path, scifact_slice_root: Path, tmp_path: Path
) -> None:
    def as_format_1(source: Path, name: str) -> Path:
        """A copy of `source` whose manifest reads as format 1 wrote it: no sizes, no checksum of itself."""
        root = tmp_path / name
        shutil.copytree(source, root)
        version = resolve_artifact(root)
        manifest = json.loads((version / MANIFEST).read_text(encoding="utf-8"))
        del manifest["sizes"], manifest[MANIFEST_CHECKSUM]
        (version / MANIFEST).write_text(json.dumps({**manifest, "format_version": 1}), encoding="utf-8")
        return root

    shops = Collection.load(as_format_1(shops_root, "shops"))  # no Word2Vec: nothing pickled to refuse
    assert shops.manifest["format_version"] == 1 and shops.behaviour is not None
    shops.close()
    with pytest.raises(
        ArtifactError, match=r"word2vec/model/vectors\.kv holds the Word2Vec vectors as a gensim"
    ):
        Collection.load(as_format_1(scifact_slice_root, "scifact"))


# ---------------------------------------------------------------------------------- a running service
@dataclass
class Served:
    """A service answering for a copy of a collection root (and of a ranker root), with the admin routes."""

    client: TestClient
    root: Path
    ranker: Path | None
    name: str

    def reload(self) -> dict:
        response = self.client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        return {"status": response.status_code, **response.json()}


@pytest.fixture(scope="module")
def served(
    sources: dict[str, Path], search_rankers: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Served]]:
    """SciFact with the LambdaMART ranker, and shops without one, served by one app each."""
    folder = tmp_path_factory.mktemp("served")
    apps = {}
    with_ranker = {SCIFACT: folder / "ranker"}
    shutil.copytree(search_rankers["lambdamart"], with_ranker[SCIFACT])
    for name in (SCIFACT, SHOPS):
        root = folder / name
        shutil.copytree(sources[name], root)
        registry = CollectionRegistry({name: root}, opener=service_opener(with_ranker), retire_after_s=0.0)
        registry.load()
        client = TestClient(create_app({name: root}, registry=registry, admin_token=TOKEN))
        apps[name] = Served(client.__enter__(), root, with_ranker.get(name), name)
    yield apps
    for each in apps.values():
        each.client.__exit__(None, None, None)
        each.client.app.state.registry.close()  # type: ignore[attr-defined]


QUERY = {SCIFACT: "vitamin D and bone density", SHOPS: "fresh sushi"}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_damaged_new_version_is_refused_and_the_previous_one_keeps_serving(
    kind: str, damage: str, served: dict[str, Served], search_rankers: dict[str, Path]
) -> None:
    artifact, pattern = KINDS[kind]
    service = served[SHOPS if artifact == SHOPS else SCIFACT]
    before = service.client.post("/search", json={"query": QUERY[service.name], "k": 5}).json()
    if artifact == RANKER:  # a retrained ranker published beside the served collection
        assert service.ranker is not None
        root, source = service.ranker, resolve_artifact(_ranker_source(search_rankers, pattern))
    else:
        root, source = service.root, resolve_artifact(service.root)
    previous = VersionStore(root).current_name()
    refused, version = copy_version(root, source)
    file = file_of(version, pattern)
    DAMAGE[damage](version / file)

    answer = service.reload()
    assert answer["status"] == 500
    [failure] = answer["failures"]
    assert (failure["collection"], failure["file"], failure["path"]) == (service.name, file, str(version))
    assert failure["serving"] == before["index_version"]
    what = "ranker version" if artifact == RANKER else "version"
    assert f"collection '{service.name}': {what} {refused} refused, still serving " in answer["detail"]
    assert f" {file}" in answer["detail"]
    assert answer["versions"] == {service.name: before["index_version"]}

    ready = service.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["reload_failures"][service.name] == failure
    after = service.client.post("/search", json={"query": QUERY[service.name], "k": 5}).json()
    assert (after["index_version"], after["scorer"], after["scorer_version"]) == (
        before["index_version"],
        before["scorer"],
        before["scorer_version"],
    )
    assert [hit["id"] for hit in after["results"]] == [hit["id"] for hit in before["results"]]

    VersionStore(root).publish(str(previous))  # rolled back: the failure is over
    assert service.reload()["status"] == 200
    assert service.client.get("/readyz").json()["reload_failures"] == {}


def test_the_other_collections_still_switch_and_watch_does_not_retry_a_refused_version(
    scifact_slice_root: Path, shops_root: Path, tmp_path: Path
) -> None:
    roots = {SCIFACT: tmp_path / SCIFACT, SHOPS: tmp_path / SHOPS}
    for name, source in ((SCIFACT, scifact_slice_root), (SHOPS, shops_root)):
        shutil.copytree(source, roots[name])
    opened: list[str] = []
    opener = service_opener()

    def counting(root: Path, name: str, previous: object) -> object:
        opened.append(name)
        return opener(root, name, previous)  # type: ignore[arg-type]

    registry = CollectionRegistry(roots, opener=counting, retire_after_s=0.0)  # type: ignore[arg-type]
    registry.load()
    try:
        _, damaged = copy_version(roots[SCIFACT], resolve_artifact(roots[SCIFACT]))
        flip(damaged / "bm25/content/impacts.npy")
        fresh, _ = copy_version(roots[SHOPS], resolve_artifact(roots[SHOPS]))
        opened.clear()
        with pytest.raises(
            ReloadFailedError, match=r"checksum mismatch for bm25/content/impacts\.npy"
        ) as refused:
            registry.reload()
        assert [r.name for r in refused.value.switched] == [SHOPS]
        assert registry.get(SHOPS).version == fresh and opened == [SCIFACT, SHOPS]
        assert registry.reload(retry=False) == [] and opened == [SCIFACT, SHOPS]  # what --watch does
        assert set(registry.reload_failures) == {SCIFACT}
    finally:
        registry.close()


# ------------------------------------------------------------------------------------------- serve
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_exits_with_a_message_naming_the_file(
    scifact_slice_root: Path, tmp_path: Path, workers: str
) -> None:
    root = tmp_path / "root"
    shutil.copytree(scifact_slice_root, root)
    truncate(resolve_artifact(root) / "dense/hnsw.bin")
    result = CliRunner().invoke(cli, ["serve", "--index", f"sf={root}", "--workers", workers, "--port", "0"])
    assert result.exit_code == 2, result.output
    assert "error: collection 'sf' cannot be served from" in result.output
    assert "dense/hnsw.bin is truncated: " in result.output and "Traceback" not in result.output
