"""Build one collection artifact from items (and optionally behaviour events) into a new published version.

Stages: read and validate the input, analyse every BM25 field and index it, write keyword filters and
numeric columns, store the documents, embed and index them, train text Word2Vec, derive behaviour
artifacts, then write the manifest. Everything is written into a staging directory of a `VersionStore`
and published only when the manifest is written, so the service never sees a half-built index and a
build killed at any moment leaves the current version untouched.

Layout of a version directory (every file is checksummed in ``manifest.json``)::

    manifest.json            kind, format version, libraries, params (config, fields, encoder, word2vec,
                             behaviour, input report, timings), sha256 and size of every file, and
                             a sha256 of itself (indexer.artifact)
    ids.txt                  external ids, one JSON string per line; line i = row i
    bm25/fields.json         BM25 fields: name, analyzer, boost, sources (see indexer.fields)
    bm25/<field>/            one InvertedIndex per field (indexer.inverted)
    keywords/fields.json     keyword fields; keywords/<field>/{values.json,offsets.npy,rows.npy[,codes.npy]}
    columns/<name>.npy       numeric columns (float64, NaN = missing): features, lat, lon, popularity
    docstore/                forward index: id -> record (indexer.docstore)
    dense/                   transformer embeddings, or the items' own vectors (indexer.item_vectors), in a
                             VectorIndex (indexer.ann)
    word2vec/                text Word2Vec, query vectorizer and document-vector index (indexer.text_vectors)
    behaviour/               only with events: histories, popularity, item2vec (indexer.behaviour)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from indexer.analysis import describe_auto, make_analyzer, script_shares
from indexer.ann import make_index
from indexer.artifact import file_checksums, write_manifest
from indexer.behaviour import write_behaviour
from indexer.config import BuildConfig
from indexer.crash_points import crash_point
from indexer.docstore import DocStore
from indexer.encoder_choice import AUTO, EncoderChoice, choose_encoder, supplied
from indexer.encoders import TextEncoder, index_cache_dir, make_encoder
from indexer.encoders.base import release
from indexer.events import Events
from indexer.fields import Bm25Field, FieldedBm25
from indexer.histories import TIME_ORDER
from indexer.ids import IDS_FILE, read_ids, write_ids
from indexer.inverted import InvertedIndex
from indexer.item_parts import field_text, keyword_values, numeric_values, record_of
from indexer.item_vectors import vector_matrix
from indexer.items import Item, item_from_fields
from indexer.keywords import write_columns, write_keywords
from indexer.logged_writes import FoldedWrites, fold_log, with_logged_events
from indexer.manifests import COLLECTION_KIND
from indexer.reuse import fingerprint, record_inputs, reuse_part
from indexer.schemas import SUPPLIED, ItemSchema
from indexer.shards import (
    Each,
    FieldTokens,
    in_process,
    shard_bounds,
    shard_checksums,
    write_bm25_shards,
    write_dense_shards,
    write_docstore_shards,
)
from indexer.sources import ItemInput, describe_skipped, read_event_input, read_item_input
from indexer.text_vectors import write_text_vectors
from indexer.versions import VersionStore

SKIPPED_EXAMPLES = 20
T = TypeVar("T")
# `retrieval.collection` imports these from here; they live in `indexer.ids` and `indexer.manifests`.
__all__ = ["COLLECTION_KIND", "IDS_FILE", "BuildReport", "build_collection", "encoder_for", "read_ids"]


@dataclass
class BuildReport:
    version: str
    path: Path
    n_docs: int
    seconds: dict[str, float] = field(default_factory=dict)
    skipped_rows: int = 0
    skipped_events: int = 0
    unknown_item_events: int = 0
    messages: list[str] = field(default_factory=list)


@contextmanager
def _stage(name: str, timings: dict[str, float], log: Callable[[str], None]) -> Iterator[None]:
    crash_point(f"build:{name}")
    log(f"{name}...")
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)
    log(f"{name}: {timings[name]:.1f}s")


class Spread(Protocol):
    """Where a build's per-item and per-shard work runs besides this process (`indexer.ray_build.RayBuild`):
    the encoder's model, the analysis of the texts, and the writing of each shard's parts (`each`, an
    `indexer.shards.Each`: those jobs write into the staging folder, which they must be able to reach)."""

    def encoder(self, kind: str, batch_size: int, onnx_dir: Path | None, device: str) -> TextEncoder: ...

    def analyze(self, analyzer: str, texts: list[str]) -> list[list[str]]: ...

    def each(
        self, work: Callable[..., T], jobs: Sequence[tuple[Any, ...]], shared: tuple[Any, ...] = ()
    ) -> list[T]: ...


def encoder_for(config: BuildConfig, root: Path, spread: Spread | None = None) -> TextEncoder:
    """The encoder of `config`'s kind, with `root`'s embedding cache: what a build uses when none is passed
    in. ``auto`` is resolved from the items first (`choose_encoder`); a manifest's config holds the kind.
    With `spread` the model runs there (`indexer.encoders.make_encoder`)."""
    if config.encoder == AUTO:
        raise ValueError("encoder 'auto' depends on the items; resolve it with choose_encoder first")
    if config.encoder == SUPPLIED:
        raise ValueError("encoder 'supplied': the items carry their own vectors, and no encoder runs")
    return make_encoder(
        config.encoder,
        cache_dir=index_cache_dir(root),
        batch_size=config.encoder_batch_size,
        embedding_cache=config.embedding_cache,
        device=config.encoder_device,
        spread=spread.encoder if spread is not None else None,
    )


def build_collection(
    corpus: Path,
    root: Path,
    config: BuildConfig,
    *,
    behaviour: Path | None = None,
    encoder: TextEncoder | None = None,
    spread: Spread | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> BuildReport:
    """Build `corpus` (a BEIR folder or a JSONL/CSV/Parquet item file) into a new version under `root`.

    `behaviour` is an optional events log (user_id, item_id, timestamp[, weight]). Item roles `config` does
    not set are filled from the file's column names; the mapping used is logged and stored in the manifest.
    Bad input rows raise `indexer.rows.BadRowsError` (a ValueError listing file, line and field) unless
    `config.skip_bad_rows`. Inputs are read and checked before the root is touched. With no `encoder`,
    ``encoder = "auto"`` picks one from the items' scripts; the manifest's config records the kind used.
    Items with a `vector` column carry their own vectors (`indexer.item_vectors`): no encoder runs (pass
    none), the dense index holds those vectors, and the manifest records the kind ``supplied``. `spread`
    analyses and embeds the items elsewhere, e.g. on a Ray cluster (`indexer.ray_build.RayBuild`), and
    writes a sharded version's shards there. The encoder is released once the items are embedded (or the
    embedding failed: `indexer.encoders.base.release`, a pool's actors go), so the shards' jobs that follow
    find the cluster's CPUs free.
    """
    timings: dict[str, float] = {}
    with _stage("read", timings, log):
        source = read_item_input(corpus, config)
        events = read_event_input(behaviour, config) if behaviour is not None else None
        folded = fold_log(root)
    report = _input_report(source, events, behaviour, config)
    source, events = _fold(source, events, folded, report)
    config = config.model_copy(update={"items": source.schema})  # the manifest records what was read
    _check_fields(config, source)
    scripts = _auto_scripts(source.items, config)
    report.messages += [f"analyzer auto, field {name}: {describe_auto(s)}" for name, s in scripts.items()]
    choice = _encoder_choice(config, encoder, source, scripts)
    config = config.model_copy(update={"encoder": choice.kind})  # the service loads this kind
    report.messages.append(choice.describe())
    report.seconds = timings
    for message in report.messages:
        log(message)
    store = VersionStore(root)
    with store.build(keep=config.keep_versions) as (version, staging):
        stage = partial(_stage, timings=timings, log=log)
        current = store.current_name()
        previous = store.versions_dir / current if current is not None else None
        if choice.kind != SUPPLIED:
            encoder = encoder or encoder_for(config, Path(root), spread)
        parts = _write_parts(staging, source, events, config, encoder, progress, stage, previous, spread)
        parts["encoder"]["choice"] = choice.describe()
        if events is not None:
            report.unknown_item_events = _report_unknown_items(parts["behaviour"], report, log)
        params: dict[str, Any] = {
            "config": config.model_dump(),
            "name": config.name,
            "corpus": str(corpus),
            "behaviour_log": str(behaviour) if behaviour is not None else None,
            "input": {
                "format": source.format,
                "path": str(source.path),
                "columns_by_name": list(source.columns.by_name),
                "skipped_rows": source.skipped_count,
                "skipped_examples": [str(row) for row in source.skipped[:SKIPPED_EXAMPLES]],
                "skipped_events": report.skipped_events,
            },
            "n_docs": len(source.items),
            "writes": folded.summary(),
            "scripts": scripts,
            **parts,
            "seconds": timings,
        }
        crash_point("build:manifest")
        checksums = file_checksums(staging)
        if params["shards"] is not None:
            params["shards"]["sha256"] = shard_checksums(checksums.sha256, params["shards"]["count"])
        write_manifest(
            staging, kind=COLLECTION_KIND, params=params, parts={"version": version}, checksums=checksums
        )
    report.version, report.path = version, store.versions_dir / version
    return report


def _write_parts(
    staging: Path,
    source: ItemInput,
    events: Events | None,
    config: BuildConfig,
    encoder: TextEncoder | None,
    progress: bool,
    stage: Callable[[str], AbstractContextManager[None]],
    previous: Path | None = None,
    spread: Spread | None = None,
) -> dict[str, Any]:
    """Write every part of the version; return what the manifest says about each. Trained parts whose
    inputs did not change are copied from the `previous` version instead of retrained. No `encoder`: the
    items carry their own vectors."""
    items = source.items
    bounds = shard_bounds(len(items), config.shards) if config.shards > 1 else None
    each: Each = spread.each if spread is not None else in_process  # who writes each shard's parts
    write_ids(staging, (item.id for item in items))
    with stage("analyze+bm25"):
        specs, tokens_by_key = _field_tokens(items, config, progress, spread)
        _write_bm25(staging, specs, config, bounds, each)
    with stage("keywords+columns"):
        keywords, columns = _write_attributes(staging, items, source.schema)
    with stage("docstore"):
        if bounds is None:
            DocStore.write(staging / "docstore", ((item.id, record_of(item)) for item in items))
        else:
            write_docstore_shards(staging, items, bounds, each)
    # Word2Vec and the behaviour models need neither the vectors nor the ANN index: they train on a side
    # thread meanwhile (gensim and torch release the GIL), so the build takes about as long as its slowest
    # stage instead of their sum. Both are seeded and single-threaded, so the overlap changes no result.
    side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="build-trained")
    try:
        trained = side.submit(_trained_parts, staging, items, events, config, tokens_by_key, previous, stage)
        if encoder is None:
            with stage("vectors"):
                vectors = vector_matrix([item.vector for item in items])
        else:
            with stage("encode"):
                try:
                    vectors = encoder.encode([item.text() for item in items], show_progress=progress)
                finally:  # a pool's actors go, so the shards' ANN jobs get the cluster's CPUs
                    release(encoder)
        with stage("ann"):
            ann_params: dict[str, Any] = dict(config.ann_params)
            if bounds is None:
                index = make_index(config.ann_backend, vectors.shape[1], **ann_params)
                index.add(vectors)
                index.save(staging / "dense")
                resolved = index.params
            else:
                resolved = write_dense_shards(staging, vectors, bounds, config.ann_backend, ann_params, each)
        w2v, behaviour_params = trained.result()
    finally:  # a failed encode does not wait for the training: the staging folder goes anyway
        side.shutdown(wait=False, cancel_futures=True)
    return {
        "fields": [
            {"name": name, "analyzer": analyzer, "boost": boost, "sources": list(sources)}
            for name, analyzer, boost, sources, _ in specs
        ],
        "keywords": keywords,
        "columns": columns,
        "encoder": _encoder_params(encoder, vectors, source.schema),
        "ann": {"backend": config.ann_backend, **resolved},
        "shards": None if bounds is None else {"count": len(bounds), "rows": [list(b) for b in bounds]},
        "word2vec": w2v,
        "behaviour": behaviour_params,
    }


def _trained_parts(
    staging: Path,
    items: list[Item],
    events: Events | None,
    config: BuildConfig,
    tokens_by_key: dict[tuple, list[list[str]]],
    previous: Path | None,
    stage: Callable[[str], AbstractContextManager[None]],
) -> tuple[dict, dict | None]:
    """Word2Vec, then the behaviour models: what the manifest says of each."""
    with stage("word2vec"):
        w2v = _text_vectors(staging, items, config, tokens_by_key, previous)
    behaviour_params = None
    if events is not None:
        with stage("behaviour"):
            behaviour_params = _behaviour(staging, items, events, config, previous)
    return w2v, behaviour_params


def _encoder_params(encoder: TextEncoder | None, vectors: np.ndarray, schema: ItemSchema) -> dict[str, Any]:
    """What the manifest says embedded the items: the encoder, or the column of the items' own vectors."""
    if encoder is None:
        return {"kind": SUPPLIED, "column": schema.vector, "dim": int(vectors.shape[1]), "normalized": True}
    return {
        "model": encoder.name,
        "kind": encoder.kind,
        "multilingual": encoder.multilingual,
        "device": encoder.device,
        "dim": int(vectors.shape[1]),
        "normalized": True,
    }


def _input_report(
    source: ItemInput, events: Events | None, behaviour: Path | None, config: BuildConfig
) -> BuildReport:
    report = BuildReport(version="", path=Path(), n_docs=len(source.items))
    report.messages += [source.columns.describe(), *source.columns.notes]
    configured = config.items.model_dump(include=config.items.model_fields_set)
    if source.format == "beir" and configured != source.schema.model_dump(include=set(configured)):
        report.messages.append("note: a BEIR folder is read as _id, title, text; [items] columns are ignored")
    if source.skipped_count:
        report.skipped_rows = source.skipped_count
        report.messages.append(describe_skipped(source.path, source.skipped_count, source.skipped))
    if events is not None and behaviour is not None and events.skipped_count:
        report.skipped_events = events.skipped_count
        report.messages.append(describe_skipped(behaviour, events.skipped_count, events.skipped))
    return report


def _fold(
    source: ItemInput, events: Events | None, folded: FoldedWrites, report: BuildReport
) -> tuple[ItemInput, Events | None]:
    """The inputs with the service's logged writes before the snapshot folded in (`indexer.logged_writes`):
    deleted items left out, written ones in place of their id's row or after the last row. A written item
    this build's item mapping cannot read is a ValueError naming it (it was acknowledged: never dropped)."""
    if not folded.upto:
        return source, events
    written: dict[str, Item] = {}
    for item_id, fields in folded.written.items():
        item, problems = item_from_fields(item_id, fields, source.schema)
        if item is None:
            detail = "; ".join(f"{name}: {problem}" for name, problem in problems)
            raise ValueError(f"item {item_id!r} written through the service cannot be read: {detail}")
        written[item_id] = item
    kept = [written.pop(item.id, item) for item in source.items if item.id not in folded.deleted]
    added = list(written.values())
    logged = folded.events()
    report.messages.append(
        f"write log: folded {len(logged) if logged is not None else 0} event(s), "
        f"{len(source.items) - len(kept)} deleted item(s) and {len(folded.written)} written item(s) "
        f"({len(added)} new) logged before offset {folded.upto}"
    )
    return dataclasses.replace(source, items=kept + added), with_logged_events(events, logged)


def _report_unknown_items(params: dict, report: BuildReport, log: Callable[[str], None]) -> int:
    count = int(params["unknown_item_events"])
    if count:
        examples = params["unknown_item_examples"][:3]
        unknown = params["unknown_items"]
        message = f"{count} event(s) name {unknown} item(s) outside the corpus (e.g. {examples}); left out"
        report.messages.append(message)
        log(message)
    return count


def _check_fields(config: BuildConfig, source: ItemInput) -> None:
    known = list(source.schema.text)
    for spec in config.fields:
        make_analyzer(config.field_analyzer(spec))  # unknown analyzer -> ValueError listing them
        missing = [s for s in spec.sources if s not in known]
        if missing:
            raise ValueError(f"field {spec.name!r} reads text field(s) {missing}; the items have {known}")
    if config.word2vec.analyzer is not None:
        make_analyzer(config.word2vec.analyzer)


def _auto_scripts(items: list[Item], config: BuildConfig) -> dict[str, dict[str, float]]:
    """Per field analysed by `auto`: each script's share of its letters (what the build log reports)."""
    return {
        spec.name: script_shares(field_text(item, spec.sources) for item in items)
        for spec in config.fields
        if config.field_analyzer(spec) == "auto"
    }


def _encoder_choice(
    config: BuildConfig, encoder: TextEncoder | None, source: ItemInput, scripts: dict[str, dict[str, float]]
) -> EncoderChoice:
    """The encoder kind of this build: the items' own vectors, the caller's encoder, the configured kind,
    or `auto`'s pick."""
    items, column = source.items, source.schema.vector
    if column is not None:
        if encoder is not None:
            raise ValueError(f"the items carry their own vectors (column {column!r}); pass no encoder")
        first = items[0].vector
        return supplied(config.encoder, len(first) if first is not None else 0, column)
    if encoder is not None:
        return EncoderChoice(encoder.kind, "given by the caller", encoder.kind)
    if config.encoder != AUTO:
        return choose_encoder(config.encoder, {})
    # A field over all text fields reads what the encoder reads: its shares are already counted.
    whole = next((spec.name for spec in config.fields if not spec.sources and spec.name in scripts), None)
    shares = scripts[whole] if whole is not None else script_shares(item.text() for item in items)
    return choose_encoder(AUTO, shares)


def _field_tokens(
    items: list[Item], config: BuildConfig, progress: bool, spread: Spread | None = None
) -> tuple[list[FieldTokens], dict[tuple, list[list[str]]]]:
    """Each BM25 field's (name, analyzer, boost, sources, token lists), and the token lists by (analyzer,
    sources): fields with the same analyzer and sources share them. With `spread`, analysed there."""
    tokens_by_key: dict[tuple, list[list[str]]] = {}
    specs = []
    for spec in config.fields:
        analyzer_name = config.field_analyzer(spec)
        key = (analyzer_name, tuple(spec.sources))
        if key not in tokens_by_key:
            if spread is not None:
                texts = [field_text(item, spec.sources) for item in items]
                tokens_by_key[key] = spread.analyze(analyzer_name, texts)
            else:
                analyzer = make_analyzer(analyzer_name)
                texts = tqdm(items, f"analyze {spec.name}", disable=not progress)
                tokens_by_key[key] = [analyzer(field_text(item, spec.sources)) for item in texts]
        specs.append((spec.name, analyzer_name, spec.boost, tuple(spec.sources), tokens_by_key[key]))
    return specs, tokens_by_key


def _write_bm25(
    staging: Path,
    specs: list[FieldTokens],
    config: BuildConfig,
    bounds: list[tuple[int, int]] | None,
    each: Each = in_process,
) -> None:
    """One InvertedIndex per field, or per field and shard (`indexer.shards`), each shard's by `each`."""
    if bounds is not None:
        write_bm25_shards(staging, specs, bounds, config.k1, config.b, each)
        return
    fields = [
        Bm25Field(name, analyzer, boost, sources, InvertedIndex.build(tokens, k1=config.k1, b=config.b))
        for name, analyzer, boost, sources, tokens in specs
    ]
    FieldedBm25(fields).save(staging / "bm25")


def _text_vectors(
    staging: Path,
    items: list[Item],
    config: BuildConfig,
    tokens_by_key: dict[tuple, list[list[str]]],
    previous: Path | None,
) -> dict:
    settings = config.word2vec
    if not settings.enabled:
        return {"trained": False, "reason": "disabled in the configuration"}
    analyzer_name = settings.analyzer or config.field_analyzer(config.fields[0])
    tokens = tokens_by_key.get((analyzer_name, ()))
    if tokens is None:
        analyzer = make_analyzer(analyzer_name)
        tokens = [analyzer(item.text()) for item in items]
    described = [settings.model_dump(), analyzer_name, config.ann_backend, config.ann_params]
    inputs = fingerprint(described, token_lists=tokens)
    reused = reuse_part(previous, "word2vec", staging, inputs)
    if reused is not None:
        return reused
    params = write_text_vectors(
        staging / "word2vec", tokens, analyzer_name, settings, config.ann_backend, config.ann_params
    )
    record_inputs(staging / "word2vec", inputs)
    return params


def _behaviour(
    staging: Path, items: list[Item], events: Events, config: BuildConfig, previous: Path | None
) -> dict:
    item_ids = np.asarray([item.id for item in items], dtype=object)
    arrays = [item_ids, events.user_ids, events.item_ids, events.timestamps]
    if events.weights is not None:
        arrays.append(events.weights)
    inputs = fingerprint([config.behaviour.model_dump(), TIME_ORDER], arrays=arrays)
    reused = reuse_part(previous, "behaviour", staging, inputs)
    if reused is not None:
        return reused
    row_of = {item.id: row for row, item in enumerate(items)}
    params = write_behaviour(staging / "behaviour", events, row_of, config.behaviour)
    record_inputs(staging / "behaviour", inputs)
    return params


def _write_attributes(
    staging: Path, items: list[Item], schema: ItemSchema
) -> tuple[dict[str, int], list[str]]:
    """Keyword filters (category, tags, categorical features) and numeric columns (`indexer.item_parts`)."""
    per_item = [keyword_values(item, schema) for item in items]
    keyword_fields = {
        name: [values[name] for values in per_item] for name in (per_item[0] if per_item else {})
    }
    numbers = [numeric_values(item, schema) for item in items]
    numeric = {name: [values[name] for values in numbers] for name in (numbers[0] if numbers else {})}
    keywords = write_keywords(staging / "keywords", keyword_fields, len(items))
    columns = write_columns(staging / "columns", numeric) if numeric else []
    return keywords, columns
