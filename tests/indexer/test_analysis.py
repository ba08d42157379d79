"""Tests for the text analyzers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import bm25s
import pytest
import Stemmer

from indexer.analysis import ANALYZERS, ENGLISH_STOPWORDS, describe_auto, make_analyzer, script_shares

XQUAD_ZH = Path(__file__).resolve().parents[2] / "data" / "xquad-r-zh" / "corpus.jsonl"


def test_english_drops_stopwords_lowercases_and_stems() -> None:
    tokens = make_analyzer("english")("The Runners were RUNNING quickly to the stations, a b c")
    assert tokens == ["runner", "were", "run", "quick", "station"]
    assert not ENGLISH_STOPWORDS.intersection(tokens)


def test_english_matches_bm25s_tokenizer() -> None:
    texts = [
        "Microstructural development of human newborn cerebral white matter assessed in vivo.",
        "Its 0.5-1.0 mm^3 resolution isn't what it was; IL-10 and TNF-alpha levels rose 3x.",
        "",
    ]
    expected = bm25s.tokenize(
        texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False, show_progress=False
    )
    analyzer = make_analyzer("english")
    assert [analyzer(t) for t in texts] == [[t for t in doc if t] for doc in expected]


def test_chinese_segments_a_real_sentence() -> None:
    with open(XQUAD_ZH, encoding="utf-8") as f:
        text = json.loads(f.readline())["text"]
    assert text.startswith("黑豹队的防守只丢了")
    tokens = make_analyzer("chinese")(text)
    for word in ["黑豹", "防守", "联赛", "排名", "拦截", "橄榄", "橄榄球", "联盟", "职业"]:
        assert word in tokens
    assert "nfl" in tokens  # the Latin acronym "(NFL)" is lowercased, brackets dropped
    assert all(t.strip() and any(ch.isalnum() for ch in t) for t in tokens)
    assert not {"，", "。", "(", ")", " "}.intersection(tokens)


def test_chinese_mixed_text_uses_english_pipeline_for_latin() -> None:
    tokens = make_analyzer("chinese")("我喜欢用Python编程 and running the tests，ＮＦＬ比赛。")
    assert tokens == ["我", "喜欢", "用", "python", "编程", "run", "test", "nfl", "比赛"]


def test_cjk_bigrams() -> None:
    analyzer = make_analyzer("cjk_bigram")
    assert analyzer("中文检索") == ["中文", "文检", "检索"]
    assert analyzer("中 abc") == ["中", "abc"]
    assert analyzer("搜索engines的Running") == ["搜索", "engin", "的", "run"]
    assert analyzer("") == []


def test_registry_and_unknown_name() -> None:
    assert set(ANALYZERS) == {"auto", "english", "chinese", "cjk_bigram", "cjk_unigram"}
    for name in ANALYZERS:
        assert make_analyzer(name).name == name
    with pytest.raises(ValueError, match="cjk_bigram"):
        make_analyzer("klingon")


def test_analyzers_pickle() -> None:
    for name in ANALYZERS:
        analyzer = make_analyzer(name)
        analyzer("warm up 中文")
        clone = pickle.loads(pickle.dumps(analyzer))
        assert clone("running 中文检索") == analyzer("running 中文检索")


def test_auto_is_english_on_text_without_cjk() -> None:
    auto, english = make_analyzer("auto"), make_analyzer("english")
    for text in ["The Runners were RUNNING quickly", "IL-10 and TNF-alpha rose 3x", "Москва café", ""]:
        assert auto(text) == english(text)


def test_auto_reads_chinese_as_words_and_characters() -> None:
    tokens = make_analyzer("auto")("黑豹队的防守 NFL running")
    words = make_analyzer("chinese")("黑豹队的防守")
    assert tokens[: len(words)] == words  # jieba's search-mode words first ...
    assert tokens[len(words) : len(words) + 6] == list("黑豹队的防守")  # ... then every character
    assert tokens[-2:] == ["nfl", "run"]  # Latin in the same text: the english pipeline


def test_auto_reads_japanese_and_korean_as_bigrams() -> None:
    auto = make_analyzer("auto")
    assert auto("東京タワー") == ["東京", "京タ", "タワ", "ワー"]  # kanji next to kana: Japanese bigrams
    assert auto("서울특별시 Seoul") == ["서울", "울특", "특별", "별시", "seoul"]


def test_auto_query_matches_the_documents_it_analysed() -> None:
    auto = make_analyzer("auto")
    document = set(auto("北京是中华人民共和国的首都"))
    assert {"北京", "首都", "北", "京"} <= document
    assert set(auto("北京首都")) <= document


def test_script_shares_and_their_description() -> None:
    shares = script_shares(["abcd 中文", "서울"])
    assert shares == {"latin": 0.5, "han": 0.25, "hangul": 0.25}
    line = describe_auto(shares)
    assert line.startswith("latin 50.0% -> English stemming")
    assert "hangul 25.0% -> character bigrams" in line
    assert script_shares(["123 !!"]) == {}
