"""The ``torch`` encoder on a GPU and on CPUs: speed against sentence-transformers in the same run, and how
much the vectors (and the dense branch's quality) move from one machine or device to another.

Two steps, because the GPU is on another machine than the index:

    # on each machine to compare (a GPU one included): embed SciFact's corpus and test queries on each
    # device, timing our encoder and plain sentence-transformers on the same texts, one after the other
    python bench/encode_devices.py encode --data data/scifact --out vectors/ --devices cpu,cuda

    # where the SciFact index was built: compare those vectors with this machine's (read from the index
    # root's embedding cache; queries are embedded here on the CPU) and score each set in the dense branch
    # (exact cosine search over all documents, nDCG@10 and recall@100 on the test qrels)
    python bench/encode_devices.py compare --data data/scifact --index indexes/scifact --vectors vectors/

`encode` reads the corpus as the build does (title and text joined by a newline, `indexer.items.Item.text`;
`compare` checks that the texts equal the build's) and imports neither the service nor the index.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import cpu_model, load_average, usable_cores, versions
from indexer.encoders.base import packaged_model_dir
from indexer.encoders.torch import Encoder

TEST_QRELS = "qrels/test.tsv"


def read_corpus(data: Path) -> tuple[list[str], list[str]]:
    """The ids and texts of a BEIR corpus, each text as the build's `Item.text` joins the stripped title
    and text."""
    ids, texts = [], []
    with (data / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                ids.append(str(row["_id"]))
                fields = (str(row.get(name) or "").strip() for name in ("title", "text"))
                texts.append("\n".join(v for v in fields if v))
    return ids, texts


def read_test_queries(data: Path) -> tuple[list[str], list[str]]:
    """The ids and texts of the queries the test qrels judge, in qrels order."""
    from jobs.evaluation.datasets import read_qrels, read_queries

    queries = read_queries(data / "queries.jsonl")
    ids = [qid for qid in read_qrels(data / TEST_QRELS) if qid in queries]
    return ids, [queries[qid] for qid in ids]


def _timed(encode, texts: list[str]) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    encode(texts[:64])  # warm-up: model load, CUDA context, kernels
    start = time.perf_counter()
    vectors = encode(texts)
    return np.asarray(vectors, dtype=np.float32), time.perf_counter() - start


def encode(args: argparse.Namespace) -> None:
    from sentence_transformers import SentenceTransformer

    doc_ids, docs = read_corpus(args.data)
    query_ids, queries = read_test_queries(args.data)
    if args.limit:
        doc_ids, docs = doc_ids[: args.limit], docs[: args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ids.json").write_text(json.dumps({"docs": doc_ids, "queries": query_ids}), encoding="utf-8")
    rows = []
    for device in args.devices.split(","):
        ours = Encoder(batch_size=args.batch_size, device=device)
        vectors, seconds = _timed(ours.encode, docs)
        peer = SentenceTransformer(str(packaged_model_dir()), device=ours.device)
        peer_vectors, peer_seconds = _timed(
            lambda t, p=peer: p.encode(t, batch_size=args.batch_size, normalize_embeddings=True), docs
        )
        np.save(args.out / f"docs-{device}.npy", vectors)
        np.save(args.out / f"queries-{device}.npy", ours.encode_queries(queries))
        gap = float(np.abs(vectors - peer_vectors).max())
        rows.append(
            {
                "device": ours.device,
                "docs": len(docs),
                "ours_docs_per_s": len(docs) / seconds,
                "sentence_transformers_docs_per_s": len(docs) / peer_seconds,
                "ratio": peer_seconds / seconds,
                "max_abs_diff_to_peer": gap,
                "gpu": _gpu_name() if device.startswith("cuda") else "",
            }
        )
        print(
            f"{ours.device}: ours {rows[-1]['ours_docs_per_s']:.0f} docs/s, sentence-transformers "
            f"{rows[-1]['sentence_transformers_docs_per_s']:.0f} docs/s (ours/peer speed "
            f"{rows[-1]['ratio']:.2f}x), max |ours - peer| {gap:.2e}",
            flush=True,
        )
    machine = {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "load": load_average(),
        "libraries": versions("torch", "sentence-transformers", "transformers", "numpy"),
    }
    print(json.dumps(machine))
    (args.out / "timings.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))


def _gpu_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0))


def compare(args: argparse.Namespace) -> None:
    from indexer.config import BuildConfig
    from indexer.encoders import index_cache_dir, make_encoder
    from indexer.sources import read_item_input
    from jobs.evaluation.datasets import read_qrels
    from ranker.metrics import ndcg_at_k, recall_at_k

    ids = json.loads((args.vectors / "ids.json").read_text(encoding="utf-8"))
    doc_ids, docs = read_corpus(args.data)
    build_texts = {item.id: item.text() for item in read_item_input(args.data, BuildConfig()).items}
    differ = sum(build_texts.get(i) != t for i, t in zip(doc_ids, docs, strict=True))
    if differ:
        raise SystemExit(f"{differ} corpus texts differ from the build's: fix read_corpus first")
    if ids["docs"] != doc_ids[: len(ids["docs"])]:
        raise SystemExit("the vectors were made from another corpus order")
    doc_ids, docs = doc_ids[: len(ids["docs"])], docs[: len(ids["docs"])]
    query_ids, queries = read_test_queries(args.data)
    qrels = read_qrels(args.data / TEST_QRELS)
    # This machine's vectors: the build's, from the index root's embedding cache (no model run for them).
    local = make_encoder("torch", cache_dir=index_cache_dir(args.index), device="cpu")
    here = {"docs": local.encode(docs), "queries": local.encode_queries(queries)}
    sets = {"this machine (cpu)": here}
    for path in sorted(args.vectors.glob("docs-*.npy")):
        device = path.stem.removeprefix("docs-")
        sets[f"{args.label} ({device})"] = {
            "docs": np.load(path),
            "queries": np.load(args.vectors / f"queries-{device}.npy"),
        }
    print(f"{len(docs)} documents, {len(query_ids)} test queries; exact cosine search over all documents")
    print("| vectors | max abs diff to here (docs / queries) | top-10 same as here | nDCG@10 | recall@100 |")
    print("|---|---|---|---|---|")
    base_top = None
    for label, vectors in sets.items():
        scores = vectors["queries"] @ vectors["docs"].T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
        ranked = {qid: [doc_ids[j] for j in row] for qid, row in zip(query_ids, top, strict=True)}
        ndcg = np.mean([ndcg_at_k(ranked[q], qrels[q], 10) for q in query_ids])
        recall = np.mean([recall_at_k(ranked[q], qrels[q], 100) for q in query_ids])
        base_top = top if base_top is None else base_top
        same = np.mean([set(a[:10]) == set(b[:10]) for a, b in zip(top, base_top, strict=True)])
        gap_docs = float(np.abs(vectors["docs"] - here["docs"]).max())
        gap_queries = float(np.abs(vectors["queries"] - here["queries"]).max())
        print(f"| {label} | {gap_docs:.1e} / {gap_queries:.1e} | {same:.3f} | {ndcg:.4f} | {recall:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    steps = parser.add_subparsers(dest="step", required=True)
    one = steps.add_parser("encode", help="embed the corpus and test queries on each device, timed")
    one.add_argument("--data", type=Path, default=Path("data/scifact"))
    one.add_argument("--out", type=Path, required=True)
    one.add_argument("--devices", default="cpu", help="comma-separated: cpu, cuda, cuda:N")
    one.add_argument("--batch-size", type=int, default=64)
    one.add_argument("--limit", type=int, default=0, help="only the first N documents (0: all)")
    two = steps.add_parser("compare", help="compare vectors from `encode` with this machine's")
    two.add_argument("--data", type=Path, default=Path("data/scifact"))
    two.add_argument("--index", type=Path, default=Path("indexes/scifact"))
    two.add_argument("--vectors", type=Path, required=True)
    two.add_argument("--label", default="other machine")
    args = parser.parse_args()
    encode(args) if args.step == "encode" else compare(args)


if __name__ == "__main__":
    main()
