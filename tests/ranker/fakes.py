"""A tiny in-memory collection that satisfies `ranker.features.FeatureCollection`, and candidates for it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from indexer.analysis import make_analyzer
from indexer.ann import make_index
from indexer.fields import Bm25Field, FieldedBm25
from indexer.inverted import InvertedIndex
from retrieval.candidates import Candidate

DOCS = [
    {"title": "Vitamin D and bone density", "text": "Vitamin D supplements raise bone mineral density."},
    {"title": "Statins", "text": "Statins lower cholesterol in adults."},
    {"title": "Bone fractures", "text": "Falls cause most hip fractures in older adults."},
    {"title": "Sleep", "text": "Short sleep raises the risk of obesity."},
    {"title": "Coffee", "text": "Coffee intake and liver disease: a cohort study of coffee drinkers."},
    {"title": "", "text": "Density of bone in astronauts drops in microgravity."},
]
IDS = [f"d{i}" for i in range(len(DOCS))]
LAT = np.array([48.8566, 51.5074, np.nan, 40.7128, 35.6762, 52.52])
LON = np.array([2.3522, -0.1278, np.nan, -74.0060, 139.6503, 13.405])
CATEGORY_CODES = np.array([0, 1, 0, 2, 1, -1], dtype=np.int32)  # values: health, cardio, sleep
DAY = 86_400
TAGS = [["bone", "vitamin"], ["heart"], ["bone"], ["sleep"], ["liver"], ["bone", "space"]]


def tags_field() -> SimpleNamespace:
    """A multi-valued keyword field over TAGS with the postings interface of `indexer.keywords`."""
    values = sorted({tag for tags in TAGS for tag in tags})
    rows = [[row for row, tags in enumerate(TAGS) if value in tags] for value in values]
    offsets = np.cumsum([0, *map(len, rows)]).astype(np.int64)
    flat = np.array([r for group in rows for r in group], dtype=np.int64)
    return SimpleNamespace(values=values, codes=None, postings=lambda: (offsets, flat))


class FakeEncoder:
    """Bag of hashed words in 8 dimensions, unit length; counts its calls."""

    dim = 8
    multilingual = False

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)


class FakeDocstore:
    def __init__(self) -> None:
        self.records = dict(zip(IDS, DOCS, strict=True))

    def get_many(self, ids: list[str]) -> list[dict | None]:
        return [self.records.get(i) for i in ids]


@dataclass
class FakeCollection:
    ids: list[str]
    inverted: FieldedBm25
    vectors: object
    docstore: FakeDocstore
    encoder: FakeEncoder
    text_vectors: object = None
    behaviour: object = None
    keywords: object = field(default_factory=lambda: SimpleNamespace(fields={}))
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def popularity(self) -> np.ndarray | None:
        return self.columns.get("popularity")

    def __len__(self) -> int:
        return len(self.ids)


def fake_collection(*, behaviour: bool = True) -> FakeCollection:
    analyzer = make_analyzer("english")
    tokens = [analyzer(f"{d['title']}\n{d['text']}") for d in DOCS]
    inverted = FieldedBm25([Bm25Field("content", "english", 1.0, (), InvertedIndex.build(tokens))])
    encoder = FakeEncoder()
    vectors = make_index("exact", FakeEncoder.dim)
    vectors.add(encoder.encode([f"{d['title']} {d['text']}" for d in DOCS]))
    encoder.calls = 0
    history = np.array([0, 2, 3], dtype=np.int64)
    times = history * DAY * 10  # u1 saw rows 0, 2, 3 on days 0, 20 and 30
    user = SimpleNamespace(
        history=lambda user_id: (history, times, history) if user_id == "u1" else (np.zeros(0),) * 3,
        item_vectors=np.eye(len(DOCS), 4, dtype=np.float32),
        # the whole log: row 0 on days 0 and 30, row 2 on day 20, row 3 on day 30, row 1 on day 100
        rows=np.array([0, 2, 3, 0, 1], dtype=np.int32),
        timestamps=np.array([0, 20, 30, 30, 100], dtype=np.int64) * DAY,
    )
    return FakeCollection(
        ids=list(IDS),
        inverted=inverted,
        vectors=vectors,
        docstore=FakeDocstore(),
        encoder=encoder,
        behaviour=user if behaviour else None,
        keywords=SimpleNamespace(
            fields={"category": SimpleNamespace(codes=CATEGORY_CODES), "tags": tags_field()}
        ),
        columns={"lat": LAT, "lon": LON, "popularity": np.array([5.0, 1.0, np.nan, 0.0, 2.0, 3.0])},
    )


def candidates() -> list[Candidate]:
    """Rows 0, 5, 2, 1 as a merge of bm25 and dense would give them."""
    return [
        Candidate(0, 0.032, {"bm25": 1, "dense": 1}, {"bm25": 3.1, "dense": 0.9}),
        Candidate(5, 0.016, {"bm25": 2}, {"bm25": 1.7}),
        Candidate(2, 0.016, {"dense": 2}, {"dense": 0.5}),
        Candidate(1, 0.015, {"bm25": 3}, {"bm25": 0.2}),
    ]
