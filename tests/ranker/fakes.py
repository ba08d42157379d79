"""A tiny collection that satisfies `ranker.features.FeatureCollection`, and candidates for it.

The BM25 fields, vectors and columns are built in memory; the keyword fields and the behaviour log are real
artifacts (`indexer.keywords`, `indexer.behaviour`) written to a directory the test gives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.analysis import make_analyzer
from indexer.ann import make_index
from indexer.behaviour import Behaviour, write_behaviour
from indexer.config import BehaviourConfig
from indexer.events import Events
from indexer.fields import Bm25Field, FieldedBm25
from indexer.inverted import InvertedIndex
from indexer.keywords import Keywords, write_keywords
from ranker.scoring import Candidate

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
CATEGORIES = ["bone", "heart", "bone", "sleep", "heart", None]  # codes 0, 1, 0, 2, 1, -1 (values sorted)
DAY = 86_400
TAGS = [["bone", "vitamin"], ["heart"], ["bone"], ["sleep"], ["liver"], ["bone", "space"]]
# u1 saw rows 0, 2, 3 on days 0, 20 and 30; another user row 0 on day 30 and row 1 on day 100.
EVENTS = [("u1", 0, 0), ("u1", 2, 20), ("u1", 3, 30), ("other", 0, 30), ("other", 1, 100)]
ITEM2VEC = np.eye(len(DOCS), 4, dtype=np.float32)  # row i's item2vec vector


def write_keyword_fields(directory: Path) -> Keywords:
    """A single-valued `category` field and a multi-valued `tags` field, written and loaded back."""
    category = [[value] if value is not None else [] for value in CATEGORIES]
    write_keywords(directory, {"category": category, "tags": TAGS}, len(DOCS))
    return Keywords.load(directory, len(DOCS))


def write_events(directory: Path) -> Behaviour:
    """The behaviour artifact of EVENTS, with ITEM2VEC standing in for trained item2vec vectors."""
    users, rows, days = zip(*EVENTS, strict=True)
    events = Events(
        user_ids=np.array(users, dtype=str),
        item_ids=np.array([IDS[row] for row in rows], dtype=str),
        timestamps=np.array(days, dtype=np.int64) * DAY,
        weights=None,
    )
    row_of = {item_id: row for row, item_id in enumerate(IDS)}
    write_behaviour(directory, events, row_of, BehaviourConfig(item2vec=False))
    (directory / "item2vec").mkdir()
    np.save(directory / "item2vec" / "item_vectors.npy", ITEM2VEC)
    return Behaviour(directory)


class FakeEncoder:
    """Bag of hashed words in 8 dimensions, unit length; counts its calls."""

    dim = 8
    multilingual = False
    device = "cpu"

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
    behaviour: Behaviour | None = None
    keywords: Keywords = field(default_factory=lambda: Keywords({}))
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def popularity(self) -> np.ndarray | None:
        return self.columns.get("popularity")

    def __len__(self) -> int:
        return len(self.ids)


def fake_collection(directory: Path, *, behaviour: bool = True) -> FakeCollection:
    """The collection, its keyword fields and behaviour log written under `directory`."""
    analyzer = make_analyzer("english")
    tokens = [analyzer(f"{d['title']}\n{d['text']}") for d in DOCS]
    inverted = FieldedBm25([Bm25Field("content", "english", 1.0, (), InvertedIndex.build(tokens))])
    encoder = FakeEncoder()
    vectors = make_index("exact", FakeEncoder.dim)
    vectors.add(encoder.encode([f"{d['title']} {d['text']}" for d in DOCS]))
    encoder.calls = 0
    return FakeCollection(
        ids=list(IDS),
        inverted=inverted,
        vectors=vectors,
        docstore=FakeDocstore(),
        encoder=encoder,
        behaviour=write_events(Path(directory) / "behaviour") if behaviour else None,
        keywords=write_keyword_fields(Path(directory) / "keywords"),
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
