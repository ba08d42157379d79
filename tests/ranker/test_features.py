"""Feature operators, declarations, satisfiability, gating and the feature log on a tiny collection."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ranker.features import (
    CollectionView,
    FeatureDeclaration,
    FeatureExtractor,
    FeatureLogger,
    UnsatisfiableDeclaration,
    default_search_declaration,
    read_feature_log,
)
from ranker.features.calc_ops import FARTHEST_KM
from ranker.features.declarations import check, resolve
from ranker.features.transforms import TRANSFORMS
from ranker.scoring import RankingContext
from tests.ranker.fakes import DOCS, candidates, fake_collection


def declaration(*features: dict) -> FeatureDeclaration:
    return FeatureDeclaration.model_validate({"features": list(features)})


def column(decl: FeatureDeclaration, collection, context: RankingContext, name: str) -> np.ndarray:
    extractor = FeatureExtractor(decl, collection)
    return extractor.extract(context, candidates())[:, extractor.names.index(name)]


def apply(op: str, values: list[float], **params: object) -> np.ndarray:
    transform = TRANSFORMS[op]
    return transform.apply(np.array(values, dtype=np.float64), {**transform.defaults, **params})


def test_transforms() -> None:
    assert apply("minmax", [2.0, 4.0, 3.0]).tolist() == [0.0, 1.0, 0.5]
    assert apply("minmax", [3.0, 3.0]).tolist() == [1.0, 1.0]  # constant request
    assert apply("zscore", [5.0, 5.0, 5.0]).tolist() == [0.0, 0.0, 0.0]
    assert apply("rank", [0.5, 0.9, 0.5, 0.1]).tolist() == [2.0, 1.0, 2.0, 4.0]  # ties share the best rank
    assert apply("bucketize", [0.0, 1.0, 5.0, 99.0], edges=[1.0, 10.0]).tolist() == [0.0, 1.0, 1.0, 2.0]
    assert apply("log1p", [-np.e + 1, 0.0]).tolist() == pytest.approx([-1.0, 0.0])
    assert apply("max_ratio", [0.0, 0.0]).tolist() == [0.0, 0.0]
    assert apply("gap_to_max", [1.0, 3.0]).tolist() == [2.0, 0.0]
    assert apply("reciprocal", [1.0], k=60).tolist() == pytest.approx([1 / 61])
    with pytest.raises(ValueError, match="increasing"):
        apply("bucketize", [1.0], edges=[3.0, 1.0])


def test_toml_declaration_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "features.toml"
    path.write_text(
        '[[features]]\nname = "bm25"\ncalc = "bm25"\ntransforms = ["max_ratio"]\n\n'
        '[[features]]\nname = "rank_dense"\ncalc = "branch_rank"\nparams = { branch = "dense" }\n'
        'transforms = [{ op = "reciprocal", k = 60 }]\ngate = "dense"\n',
        encoding="utf-8",
    )
    loaded = FeatureDeclaration.load(path)
    assert loaded.names == ["bm25", "rank_dense"]
    assert loaded.branches == ["dense"] and loaded.gates == ["dense"]
    assert FeatureDeclaration.model_validate(json.loads(json.dumps(loaded.to_json()))) == loaded


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"name": "x", "calc": "nope"}, "unknown calc op 'nope'; choose one of"),
        ({"name": "x", "calc": "bm25", "transforms": ["nope"]}, "unknown transform 'nope'"),
        ({"name": "x", "calc": "bm25", "params": {"k1": 2}}, r"has no parameter\(s\) \['k1'\]"),
        ({"name": "x", "calc": "branch_rank"}, r"needs parameter\(s\) \['branch'\]"),
        (
            {"name": "x", "calc": "bm25", "transforms": [{"op": "clip", "low": 0}]},
            "allowed: \\['hi', 'lo'\\]",
        ),
    ],
)
def test_bad_declarations_name_the_problem(feature: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        declaration(feature)


def test_repeated_names_and_unknown_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="repeated: \\['a'\\]"):
        declaration({"name": "a", "calc": "bm25"}, {"name": "a", "calc": "fused"})
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        FeatureDeclaration.load(tmp_path / "features.yaml")


def test_lexical_and_provenance_features(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    context = RankingContext(text="bone density vitamin")
    decl = declaration(
        {"name": "bm25", "calc": "bm25"},
        {"name": "overlap", "calc": "term_overlap"},
        {"name": "qlen", "calc": "query_length"},
        {"name": "rank", "calc": "branch_rank", "params": {"branch": "dense", "missing": 101}},
        {"name": "found", "calc": "branch_found", "params": {"branch": "bm25"}},
        {"name": "count", "calc": "branch_count"},
        {"name": "fused", "calc": "fused"},
        {"name": "pop", "calc": "popularity", "params": {"missing": -1}},
        {"name": "len", "calc": "item_length"},
        {"name": "title", "calc": "field_overlap", "params": {"field": "title"}},
    )
    extractor = FeatureExtractor(decl, collection)
    matrix = extractor.extract(context, candidates())
    rows = np.array([0, 5, 2, 1])
    by_name = dict(zip(extractor.names, matrix.T, strict=True))
    expected_bm25 = collection.inverted.score_rows(collection.inverted.query_terms(context.text), rows)
    np.testing.assert_allclose(by_name["bm25"], expected_bm25)
    # "bone density vitamin" -> [bone, densiti, vitamin]: doc 0 has all three, doc 5 two, docs 2 and 1 none
    np.testing.assert_allclose(by_name["overlap"], [1.0, 2 / 3, 1 / 3, 0.0])
    assert by_name["qlen"].tolist() == [3.0] * 4
    assert by_name["rank"].tolist() == [1.0, 101.0, 2.0, 101.0]
    assert by_name["found"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert by_name["count"].tolist() == [2.0, 1.0, 1.0, 1.0]
    assert by_name["fused"].tolist() == [0.032, 0.016, 0.016, 0.015]
    assert by_name["pop"].tolist() == [5.0, 3.0, -1.0, 1.0]
    analyzer = extractor.view.analyze
    assert by_name["len"].tolist() == [len(analyzer(f"{DOCS[r]['title']}\n{DOCS[r]['text']}")) for r in rows]
    np.testing.assert_allclose(by_name["title"], [1.0, 0.0, 1 / 3, 0.0])  # doc 5 has an empty title


def test_lexical_features_see_a_long_querys_pruned_terms(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    collection.inverted.max_query_terms = 2
    # tf * idf over 6 documents: vitamin 2 * idf(df 1) > densiti idf(df 2) > bone idf(df 3), which goes.
    context = RankingContext(text="bone density vitamin vitamin")
    assert collection.inverted.query_terms(context.text) == {"english": ["densiti", "vitamin", "vitamin"]}
    decl = declaration(
        {"name": "bm25", "calc": "bm25"},
        {"name": "overlap", "calc": "term_overlap"},
        {"name": "qlen", "calc": "query_length"},
    )
    extractor = FeatureExtractor(decl, collection)
    by_name = dict(zip(extractor.names, extractor.extract(context, candidates()).T, strict=True))
    rows = np.array([0, 5, 2, 1])
    expected = collection.inverted.score_rows({"english": ["densiti", "vitamin", "vitamin"]}, rows)
    np.testing.assert_allclose(by_name["bm25"], expected)  # the terms the BM25 branch searched with
    np.testing.assert_allclose(by_name["overlap"], [1.0, 0.5, 0.0, 0.0])  # of densiti and vitamin
    assert by_name["qlen"].tolist() == [3.0] * 4


def test_dense_features_read_the_query_vector_once(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    decl = declaration(
        {"name": "cos", "calc": "cosine"},
        {"name": "cos_z", "calc": "cosine", "transforms": ["zscore"]},
        {"name": "prf", "calc": "prf_cosine", "params": {"top": 2}},
    )
    matrix = FeatureExtractor(decl, collection).extract(RankingContext(text="bone density"), candidates())
    assert collection.encoder.calls == 1
    query = collection.encoder.encode(["bone density"])[0]
    items = collection.vectors._vectors(np.array([0, 5, 2, 1]))
    np.testing.assert_allclose(matrix[:, 0], items @ query, atol=1e-6)
    centroid = items[:2].mean(axis=0)
    np.testing.assert_allclose(matrix[:, 2], items @ (centroid / np.linalg.norm(centroid)), atol=1e-6)
    given = RankingContext(text="bone density", query_vectors={"dense": query})
    calls = collection.encoder.calls
    FeatureExtractor(decl, collection).extract(given, candidates())
    assert collection.encoder.calls == calls  # a vector the dense branch computed is reused


def test_gated_feature_is_not_computed_without_its_branch(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    decl = declaration({"name": "cos", "calc": "cosine", "gate": "dense", "gated_value": -5.0})
    extractor = FeatureExtractor(decl, collection)
    lexical_only = [c for c in candidates() if "dense" not in c.ranks]
    for c in lexical_only:
        c.ranks.pop("dense", None)
    assert extractor.extract(RankingContext(text="bone"), lexical_only)[:, 0].tolist() == [-5.0, -5.0]
    assert collection.encoder.calls == 0
    assert not extractor.covers(lexical_only) and extractor.covers(candidates())


def test_context_features(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    decl = declaration(
        {"name": "km", "calc": "geo_distance"},
        {"name": "pref", "calc": "category_preference"},
        {"name": "affinity", "calc": "item2vec_affinity"},
    )
    paris = RankingContext(text="x", location=(48.8566, 2.3522), user_id="u1")
    by_name = column(decl, collection, paris, "km"), column(decl, collection, paris, "pref")
    assert by_name[0][0] == pytest.approx(0.0, abs=1e-6)
    assert by_name[0][3] == pytest.approx(343.5, abs=1.0)  # Paris -> London
    assert by_name[0][2] == FARTHEST_KM  # row 2 has no coordinates
    # u1's history: rows 0, 2 (category 0) and 3 (category 2); candidate rows 0, 5 (none), 2, 1 (category 1)
    np.testing.assert_allclose(by_name[1], [2 / 3, 0.0, 2 / 3, 0.0])
    anonymous = RankingContext(text="x")
    assert column(decl, collection, anonymous, "km").tolist() == [FARTHEST_KM] * 4
    assert column(decl, collection, anonymous, "affinity").tolist() == [0.0] * 4


def test_history_features_read_the_users_history_or_the_requests_items(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    decl = declaration(
        {"name": "tags", "calc": "tag_preference"},
        {"name": "n", "calc": "history_length"},
        {"name": "all", "calc": "item2vec_affinity"},
        {"name": "last2", "calc": "item2vec_affinity", "params": {"last": 2}},
    )
    user = RankingContext(text="", user_id="u1")  # history rows 0, 2, 3: tags bone x2, vitamin, sleep
    # candidates 0 {bone, vitamin}, 5 {bone, space}, 2 {bone}, 1 {heart}: mean share of their tags
    np.testing.assert_allclose(column(decl, collection, user, "tags"), [0.5, 1 / 3, 2 / 3, 0.0])
    assert column(decl, collection, user, "n").tolist() == [3.0] * 4
    # item vectors are one-hot (row 5 all zero); profile of rows 0, 2, 3 vs of the newest two, 2 and 3
    np.testing.assert_allclose(column(decl, collection, user, "all"), [3**-0.5, 0, 3**-0.5, 0], atol=1e-6)
    np.testing.assert_allclose(column(decl, collection, user, "last2"), [0, 0, 2**-0.5, 0], atol=1e-6)
    named = RankingContext(text="", user_id="u1", items=(1,))  # a request's own items come first
    np.testing.assert_allclose(column(decl, collection, named, "tags"), [0.0, 0.0, 0.0, 1.0])
    assert column(decl, collection, named, "n").tolist() == [1.0] * 4
    nobody = RankingContext(text="")
    assert column(decl, collection, nobody, "tags").tolist() == [0.0] * 4


def test_time_features_compare_the_items_audience_with_the_users_moment(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    decl = declaration(
        {"name": "gap", "calc": "time_gap"},
        {"name": "near", "calc": "events_near", "params": {"days": 15}},
    )
    user = RankingContext(text="", user_id="u1")  # newest event on day 30
    # candidates 0 (events days 0, 30: median 30), 5 (none), 2 (day 20), 1 (day 100)
    np.testing.assert_allclose(column(decl, collection, user, "gap"), [0.0, 36_500.0, 10.0, 70.0])
    np.testing.assert_allclose(column(decl, collection, user, "near"), [1.0, 0.0, 1.0, 0.0])  # days 15..45
    nobody = RankingContext(text="")
    assert column(decl, collection, nobody, "gap").tolist() == [36_500.0] * 4
    assert column(decl, collection, nobody, "near").tolist() == [0.0] * 4


def test_unsatisfiable_declarations_are_refused_with_reasons(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path, behaviour=False)
    decl = declaration(
        {"name": "w2v", "calc": "cosine", "params": {"space": "word2vec"}},
        {"name": "stars", "calc": "column", "params": {"name": "stars"}},
        {"name": "pref", "calc": "category_preference"},
        {"name": "rank_geo", "calc": "branch_rank", "params": {"branch": "geo"}},
        {"name": "bm25", "calc": "bm25"},
    )
    with pytest.raises(UnsatisfiableDeclaration) as caught:
        FeatureExtractor(decl, collection, branches=["bm25", "dense"])
    message = str(caught.value)
    assert "w2v: the collection has no Word2Vec vectors" in message
    assert "stars: no numeric column 'stars'" in message
    assert "pref: the collection has no behaviour" in message
    assert "rank_geo: no recall branch 'geo'" in message
    assert "bm25" not in check(decl, CollectionView(collection), ["bm25", "dense"])


def test_resolve_drops_only_optional_features(tmp_path: Path) -> None:
    view = CollectionView(fake_collection(tmp_path))
    decl = declaration(
        {"name": "bm25", "calc": "bm25"},
        {"name": "w2v", "calc": "cosine", "params": {"space": "word2vec"}, "optional": True},
    )
    assert resolve(decl, view).names == ["bm25"]
    strict = declaration({"name": "w2v", "calc": "cosine", "params": {"space": "word2vec"}})
    with pytest.raises(UnsatisfiableDeclaration, match="w2v"):
        resolve(strict, view)


def test_default_declaration_is_satisfiable_and_normalised(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    decl = resolve(default_search_declaration(), CollectionView(collection), ["bm25", "dense"])
    assert "title_overlap" in decl.names and decl.gates == ["dense"]
    matrix = FeatureExtractor(decl, collection).extract(RankingContext(text="bone density"), candidates())
    assert matrix.shape == (4, len(decl.names)) and np.isfinite(matrix).all()


def test_feature_log_round_trips_exactly(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    extractor = FeatureExtractor(default_search_declaration(), collection)
    logger = FeatureLogger(tmp_path / "log" / "features.jsonl")
    contexts = [RankingContext(text=t, request_id=f"r{i}") for i, t in enumerate(["bone density", "coffee"])]
    matrices = {c.request_id: extractor.extract(c, candidates()) for c in contexts}

    def write(context: RankingContext) -> None:
        logger.log(
            context,
            extractor.ids_of(candidates()),
            candidates(),
            extractor.names,
            matrices[context.request_id],
        )

    threads = [threading.Thread(target=write, args=(c,)) for c in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logged = {r.request_id: r for r in read_feature_log(logger.path)}
    assert sorted(logged) == ["r0", "r1"]
    for request_id, matrix in matrices.items():
        record = logged[request_id]
        np.testing.assert_array_equal(record.features, matrix)  # bit-exact through JSON
        rebuilt = record.candidates(extractor.view)
        assert [(c.row, c.ranks, c.branch_scores) for c in rebuilt] == [
            (c.row, c.ranks, c.branch_scores) for c in candidates()
        ]
        np.testing.assert_array_equal(extractor.extract(record.context, rebuilt), matrix)
    logger.path.write_text("not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"features\.jsonl:1: not a feature log line"):
        list(read_feature_log(logger.path))


def test_feature_log_rotates_and_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    extractor = FeatureExtractor(default_search_declaration(), collection)
    path = tmp_path / "features.jsonl"
    matrix = extractor.extract(RankingContext(text="bone"), candidates())
    ids = extractor.ids_of(candidates())
    probe = FeatureLogger(tmp_path / "probe.jsonl")
    probe.log(RankingContext(text="bone", request_id="r00"), ids, candidates(), extractor.names, matrix)
    line_bytes = probe.path.stat().st_size
    # two lines per file: lines differ by a few bytes (the time stamp's digits), far less than half a line
    logger = FeatureLogger(path, max_bytes=int(2.5 * line_bytes), backups=2)
    for i in range(7):
        context = RankingContext(text="bone", request_id=f"r{i:02d}")
        logger.log(context, ids, candidates(), extractor.names, matrix)
    files = sorted(p.name for p in tmp_path.glob("features.jsonl*"))
    assert files == ["features.jsonl", "features.jsonl.1", "features.jsonl.2"]  # the oldest file dropped
    read = {f: [r.request_id for r in read_feature_log(tmp_path / f)] for f in files}
    assert read == {
        "features.jsonl": ["r06"], "features.jsonl.1": ["r04", "r05"], "features.jsonl.2": ["r02", "r03"]
    }  # fmt: skip


_WRITER = """
import sys
from pathlib import Path
import numpy as np

from ranker.features.log import FeatureLogger
from ranker.scoring import Candidate, RankingContext

path, name, lines = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
candidates = [Candidate(i, 0.5, {"bm25": i}, {"bm25": 1.0}) for i in range(50)]
logger = FeatureLogger(path, max_bytes=20_000, backups=1000)
for i in range(lines):
    context = RankingContext(text="bone", request_id=f"{name}{i:03d}")
    logger.log(context, [str(i) for i in range(50)], candidates, ["f"], np.ones((50, 1)))
"""


def test_worker_processes_share_one_feature_log_and_its_rotation(tmp_path: Path) -> None:
    path = tmp_path / "features.jsonl"
    repo = Path(__file__).resolve().parents[2]
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name, "60"], cwd=repo)
        for name in ("a", "b")
    ]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0]
    logged = [r.request_id for f in tmp_path.glob("features.jsonl*") for r in read_feature_log(f)]
    assert sorted(logged) == sorted(f"{name}{i:03d}" for name in "ab" for i in range(60))
    assert len(list(tmp_path.glob("features.jsonl.*"))) > 10  # it did rotate, many times


def test_a_request_reads_each_candidates_record_once(tmp_path: Path) -> None:
    collection = fake_collection(tmp_path)
    reads: list[list[str]] = []
    get_many = collection.docstore.get_many

    def counting(ids: list[str]) -> list[dict | None]:
        reads.append(list(ids))
        return get_many(ids)

    collection.docstore.get_many = counting  # type: ignore[method-assign]
    extractor = FeatureExtractor(default_search_declaration(), collection)
    reads.clear()  # the declaration check reads a record to see which fields items have
    first = extractor.extract(RankingContext("vitamin d"), candidates())
    # Item lengths and title terms both need the records on first sight: one read serves both.
    assert reads == [extractor.ids_of(candidates())]
    again = extractor.extract(RankingContext("vitamin d"), candidates())
    assert reads == [extractor.ids_of(candidates())]  # later requests: the per-row caches answer
    np.testing.assert_array_equal(first, again)
