"""`encoder = "auto"`: the kind a build picks from the items' scripts, and what its manifest records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from indexer import encoder_choice
from indexer.build import build_collection, encoder_for
from indexer.config import BuildConfig
from indexer.encoder_choice import AUTO, choose_encoder
from indexer.encoders import ENCODERS
from indexer.schemas import ENCODER_KINDS
from retrieval.collection import Collection
from tests.conftest import SCIFACT, XQUAD_SLICE_DOCS

ROOT = Path(__file__).resolve().parents[2]


def test_auto_is_the_default_and_unknown_settings_list_it() -> None:
    assert BuildConfig().encoder == AUTO
    assert BuildConfig(encoder="e5-multilingual").encoder == "e5-multilingual"
    assert BuildConfig(encoder="supplied").encoder == "supplied"  # the items carry their own vectors
    choices = r"\['auto', 'e5-multilingual', 'onnx-int8', 'torch', 'supplied'\]"
    with pytest.raises(ValueError, match=rf"'minilm'.*{choices}"):
        BuildConfig(encoder="minilm")
    with pytest.raises(ValueError, match="auto"):
        encoder_for(BuildConfig(), Path("unused"))  # auto needs the items
    with pytest.raises(ValueError, match="supplied"):
        encoder_for(BuildConfig(encoder="supplied"), Path("unused"))  # no encoder runs


def test_the_configuration_names_every_encoder_kind_and_no_other() -> None:
    # `indexer.schemas` lists the kinds without importing the encoders; the registry is where they are built.
    assert set(ENCODER_KINDS) == set(ENCODERS)


def test_reading_a_configuration_loads_no_encoder_reader_or_gensim() -> None:
    code = (
        "import sys, indexer.config; "
        "heavy = ('indexer.encoders', 'indexer.items', 'indexer.word2vec', 'pyarrow', 'gensim', 'torch'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "[]"


def test_auto_picks_by_the_latin_share_of_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_choice, "unavailable_reason", lambda: None)
    chinese = choose_encoder(AUTO, {"latin": 0.03, "han": 0.97})
    assert chinese.kind == "e5-multilingual"
    assert chinese.describe() == (
        "encoder auto: e5-multilingual (latin 3% of letters; all-MiniLM-L6-v2 is English-only)"
    )
    assert choose_encoder(AUTO, {"latin": 0.4, "other": 0.6}).kind == "e5-multilingual"  # e.g. Cyrillic
    assert choose_encoder(AUTO, {"latin": 0.5, "han": 0.5}).kind == "torch"
    assert choose_encoder(AUTO, {"latin": 1.0}).kind == "torch"
    assert choose_encoder(AUTO, {}).reason == "the items' text has no letters"
    explicit = choose_encoder("onnx-int8", {"han": 1.0})
    assert explicit.kind == "onnx-int8" and explicit.describe().startswith("encoder: onnx-int8 (set in")


def test_auto_falls_back_to_minilm_where_e5_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_choice, "unavailable_reason", lambda: "no AVX2 here")
    choice = choose_encoder(AUTO, {"han": 1.0})
    assert choice.kind == "torch" and "no AVX2 here" in choice.reason


def test_an_english_slice_still_picks_minilm(tmp_path: Path) -> None:
    messages: list[str] = []
    build_collection(SCIFACT, tmp_path, BuildConfig(limit=20), progress=False, log=messages.append)
    assert "encoder auto: torch (latin 100% of letters; all-MiniLM-L6-v2 reads English)" in messages
    collection = Collection.load(tmp_path)
    try:
        params = collection.manifest["params"]
        assert params["config"]["encoder"] == params["encoder"]["kind"] == "torch"
        assert params["encoder"]["multilingual"] is False
        assert collection.encoder.kind == "onnx-int8"  # queries: the same model in ONNX int8, by default
    finally:
        collection.close()


def test_a_chinese_slice_picks_e5_and_its_manifest_says_so(xquad_slice_root: Path) -> None:
    collection = Collection.load(xquad_slice_root)
    try:
        params = collection.manifest["params"]
        assert params["config"]["encoder"] == params["encoder"]["kind"] == "e5-multilingual"
        assert params["encoder"]["model"] == "multilingual-e5-small-q4"
        assert params["encoder"]["multilingual"] is True
        assert params["encoder"]["choice"].startswith("encoder auto: e5-multilingual (latin ")
        assert collection.encoder.kind == "e5-multilingual"  # the service embeds queries with it
        assert len(collection) == XQUAD_SLICE_DOCS
    finally:
        collection.close()
