"""Word2Vec training, SIF sentence vectors, item2vec and save/load, on small seeded synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.artifact import ArtifactError
from indexer.schemas import Word2VecParams
from indexer.sentence_vectors import SentenceVectorizer
from indexer.word2vec import item_vectors, load_vectors, save_vectors, train_item2vec, train_text_word2vec

TOPICS = {
    "animals": ["cat", "dog", "mouse", "horse", "fur", "pet", "tail", "paw"],
    "vehicles": ["car", "bus", "train", "truck", "wheel", "road", "engine", "fuel"],
}
FILLER = ["the", "a"]  # frequent in every sentence: SIF should weigh them down
PARAMS = Word2VecParams(vector_size=16, window=4, min_count=1, epochs=20, seed=0, workers=1)


def _corpus(n: int = 300, seed: int = 0) -> tuple[list[list[str]], list[str]]:
    rng = np.random.default_rng(seed)
    sentences, labels = [], []
    for _ in range(n):
        topic = str(rng.choice(list(TOPICS)))
        words = list(rng.choice(TOPICS[topic], size=8)) + list(rng.choice(FILLER, size=4))
        rng.shuffle(words)
        sentences.append([str(w) for w in words])
        labels.append(topic)
    return sentences, labels


@pytest.fixture(scope="module")
def corpus() -> tuple[list[list[str]], list[str]]:
    return _corpus()


@pytest.fixture(scope="module")
def kv(corpus):
    return train_text_word2vec(corpus[0], PARAMS)


def _mean_similarity(kv, left: list[str], right: list[str]) -> float:
    return float(np.mean([kv.similarity(a, b) for a in left for b in right if a != b]))


def test_words_that_share_contexts_are_closer(kv) -> None:
    animals, vehicles = TOPICS["animals"], TOPICS["vehicles"]
    within = (_mean_similarity(kv, animals, animals) + _mean_similarity(kv, vehicles, vehicles)) / 2
    across = _mean_similarity(kv, animals, vehicles)
    assert within - across > 0.5  # measured within 0.994, across 0.207 with seed 0
    assert kv.similarity("cat", "dog") > kv.similarity("cat", "car")


def test_training_is_reproducible_with_one_worker(corpus, kv) -> None:
    again = train_text_word2vec(corpus[0], PARAMS)
    assert again.index_to_key == kv.index_to_key
    assert np.array_equal(again.vectors, kv.vectors)
    other_seed = train_text_word2vec(corpus[0], PARAMS.model_copy(update={"seed": 1}))
    assert not np.array_equal(other_seed.vectors, kv.vectors)


@pytest.mark.parametrize(("weighting", "remove_pc"), [("mean", False), ("sif", False), ("sif", True)])
def test_document_vectors_are_normalised_and_group_by_topic(corpus, kv, weighting, remove_pc) -> None:
    sentences, labels = corpus
    docs = [*sentences[:50], ["unknown", "words", "only"]]
    vectors = SentenceVectorizer.fit(docs, kv, weighting=weighting, remove_pc=remove_pc).transform(docs)
    assert vectors.shape == (51, 16) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:50], axis=1), 1.0, atol=1e-5)
    assert not vectors[50].any()  # no known token: the zero vector
    same = np.array([[a == b for b in labels[:50]] for a in labels[:50]])
    similarity = vectors[:50] @ vectors[:50].T
    off_diagonal = ~np.eye(50, dtype=bool)
    # measured with seed 0: mean 0.505, sif 0.703, sif with the component removed 1.997
    assert similarity[same & off_diagonal].mean() - similarity[~same].mean() > 0.4


def test_sif_weights_frequent_words_down(corpus, kv) -> None:
    vectorizer = SentenceVectorizer.fit(corpus[0], kv, weighting="sif", sif_a=1e-3, remove_pc=False)
    weight = {w: vectorizer.weights[kv.get_index(w)] for w in ("the", "cat")}
    assert weight["the"] < weight["cat"] < 1.0
    counts = np.asarray(kv.expandos["count"], dtype=np.float64)
    p_the = counts[kv.get_index("the")] / counts.sum()
    assert weight["the"] == pytest.approx(1e-3 / (1e-3 + p_the), rel=1e-5)
    explicit = SentenceVectorizer.fit(corpus[0], kv, word_freqs={"the": 1, "cat": 1}, remove_pc=False)
    assert explicit.weights[kv.get_index("the")] == explicit.weights[kv.get_index("cat")]


def test_query_vector_matches_document_vector_and_removes_the_component(corpus, kv) -> None:
    sentences = corpus[0][:40]
    vectorizer = SentenceVectorizer.fit(sentences, kv, weighting="sif", remove_pc=True)
    assert vectorizer.component is not None
    assert np.linalg.norm(vectorizer.component) == pytest.approx(1.0, abs=1e-5)
    docs = vectorizer.transform(sentences)
    query = vectorizer.vector(sentences[3])
    assert np.allclose(query, docs[3], atol=1e-6)
    assert abs(float(query @ vectorizer.component)) < 1e-5
    assert abs(float(vectorizer.vector(["cat", "dog"]) @ vectorizer.component)) < 1e-5


def test_edge_cases_of_the_vectorizer(kv) -> None:
    vectorizer = SentenceVectorizer.fit([["cat", "dog"], ["car"]], kv)
    assert vectorizer.transform([]).shape == (0, 16)
    assert not vectorizer.vector([]).any() and not vectorizer.vector(["unknown"]).any()
    nothing_known = SentenceVectorizer.fit([["unknown"], []], kv, remove_pc=True)
    assert nothing_known.component is None  # no direction to remove
    assert np.linalg.norm(nothing_known.vector(["cat"])) == pytest.approx(1.0, abs=1e-5)


def test_bad_arguments_are_refused(corpus, kv) -> None:
    with pytest.raises(ValueError, match=r"unknown weighting 'tfidf'; choose one of \['mean', 'sif'\]"):
        SentenceVectorizer.fit(corpus[0], kv, weighting="tfidf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sif_a"):
        SentenceVectorizer.fit(corpus[0], kv, sif_a=0)
    with pytest.raises(ValueError, match="not a one-shot iterator"):
        train_text_word2vec(iter(corpus[0]), PARAMS)
    with pytest.raises(ValueError, match="every token list is empty"):
        train_text_word2vec([[], []], PARAMS)
    with pytest.raises(ValueError, match="min_count=50"):
        train_text_word2vec([["a", "b"], ["a"]], PARAMS.model_copy(update={"min_count": 50}))


def _sessions(n_users: int = 200, seed: int = 0) -> list[list[str]]:
    """Users consume items of one group (0-9 or 10-19), plus an occasional random item."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n_users):
        group = rng.integers(2) * 10
        items = [f"i{group + k}" for k in rng.integers(0, 10, size=12)]
        if rng.random() < 0.2:
            items.insert(int(rng.integers(len(items))), f"i{rng.integers(20)}")
        sequences.append(items)
    return sequences


@pytest.mark.parametrize("as_sets", [False, True])
def test_item2vec_puts_co_consumed_items_together(as_sets: bool) -> None:
    params = Word2VecParams(vector_size=16, window=5, min_count=1, epochs=15, seed=0, workers=1)
    kv = train_item2vec(_sessions(), params, as_sets=as_sets)
    ids = [f"i{k}" for k in range(20)] + ["never-seen"]
    vectors, present = item_vectors(ids, kv)
    assert present.tolist() == [True] * 20 + [False]
    assert not vectors[20].any()
    assert np.allclose(np.linalg.norm(vectors[:20], axis=1), 1.0, atol=1e-5)
    similarity = vectors[:20] @ vectors[:20].T
    group = np.arange(20) // 10
    same = (group[:, None] == group[None, :]) & ~np.eye(20, dtype=bool)
    # measured with seed 0: 0.709 as sequences, 0.717 as sets
    assert similarity[same].mean() - similarity[group[:, None] != group[None, :]].mean() > 0.5


def test_save_and_memory_mapped_load_roundtrip(tmp_path: Path, corpus, kv) -> None:
    files = save_vectors(tmp_path / "w2v", kv, PARAMS)
    assert files == sorted(files) and files == ["params.json", "vectors.npy", "vocabulary.json"]
    assert all((tmp_path / "w2v" / name).is_file() for name in files)
    loaded, params = load_vectors(tmp_path / "w2v")
    assert params == PARAMS
    assert isinstance(loaded.vectors, np.memmap)
    assert loaded.index_to_key == kv.index_to_key and np.array_equal(loaded.vectors, kv.vectors)

    vectorizer = SentenceVectorizer.fit(corpus[0], kv, weighting="sif", remove_pc=True)
    vectorizer_files = vectorizer.save(tmp_path / "sif")
    assert set(vectorizer_files) == {p.name for p in (tmp_path / "sif").iterdir()}
    restored = SentenceVectorizer.load(tmp_path / "sif", loaded)
    assert np.array_equal(restored.transform(corpus[0][:10]), vectorizer.transform(corpus[0][:10]))


def test_saving_the_same_vectors_twice_writes_identical_bytes(tmp_path: Path, kv) -> None:
    # gensim would record each save's time and path inside vectors.kv; two builds must not differ by that.
    a, b = tmp_path / "a", tmp_path / "elsewhere" / "b"
    first, second = save_vectors(a, kv, PARAMS), save_vectors(b, kv, PARAMS)
    assert first == second
    for name in first:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_loaded_vectors_keep_their_counts_and_a_pickled_model_is_refused(tmp_path: Path, corpus, kv) -> None:
    save_vectors(tmp_path / "w2v", kv, PARAMS)
    loaded, _ = load_vectors(tmp_path / "w2v")
    refitted = SentenceVectorizer.fit(corpus[0], loaded, weighting="sif", remove_pc=False)
    fitted = SentenceVectorizer.fit(corpus[0], kv, weighting="sif", remove_pc=False)
    np.testing.assert_array_equal(refitted.weights, fitted.weights)  # SIF reads the saved counts
    legacy = tmp_path / "format-1"
    legacy.mkdir()
    kv.save(str(legacy / "vectors.kv"))  # what artifact format 1 saved: a gensim pickle
    with pytest.raises(ArtifactError, match=r"vectors\.kv: Word2Vec vectors saved as a gensim pickle"):
        load_vectors(legacy)
