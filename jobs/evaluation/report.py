"""Write an evaluation report: `report.html` (self-contained), PNG figures and `metrics.json`.

Figures are drawn with matplotlib's object API (`Figure` renders with Agg), so no GUI backend and no global
pyplot state are involved:

- `pr_curve.png`: interpolated 11-point precision-recall curve of the merged run and of each branch,
- `recall_at_k.png`: mean recall@k against k (log scale) for each run,
- `ndcg10_hist.png`: histogram of the merged run's per-query nDCG@10.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from jobs.evaluation.evaluate import (
    DEFAULT_METRICS,
    RECALL_CURVE_KS,
    evaluate_runs,
    pr_curve,
    recall_curve,
    unique_contribution,
)
from ranker.metrics import ELEVEN_RECALL_LEVELS, Run, evaluate_run

Qrels = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Paths of everything `write_report` wrote."""

    html: Path
    metrics_json: Path
    figures: dict[str, Path]


def _plot_pr(curves: Mapping[str, Sequence[float]], path: Path) -> None:
    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    for name, precision in curves.items():
        ax.plot(ELEVEN_RECALL_LEVELS, precision, marker="o", markersize=3, label=name)
    ax.set(xlabel="recall", ylabel="interpolated precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("Interpolated 11-point precision-recall")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")


def _plot_recall(curves: Mapping[str, Mapping[int, float]], path: Path) -> None:
    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    for name, recall in curves.items():
        ax.plot(list(recall), list(recall.values()), marker="o", markersize=3, label=name)
    ax.set_xscale("log")
    ax.set(xlabel="k", ylabel="mean recall@k", ylim=(0, 1.02))
    ax.set_title("Recall@k")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")


def _plot_hist(values: Sequence[float], name: str, path: Path) -> None:
    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    ax.hist(values, bins=[i / 20 for i in range(21)], range=(0, 1), color="tab:blue", edgecolor="white")
    ax.set(xlabel="nDCG@10", ylabel="queries", xlim=(0, 1))
    ax.set_title(f"Per-query nDCG@10 of {name} ({len(values)} queries)")
    fig.tight_layout()
    fig.savefig(path, format="png")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(title: str, summary: dict, figures: Mapping[str, Path]) -> str:
    metrics = summary["metrics"]
    mean_rows = [[name, *(run["mean"][m] for m in metrics)] for name, run in summary["runs"].items()]
    unique = summary["unique_contribution"]
    unique_rows = list(unique["relevant_pairs"].items())
    images = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode("ascii")}"><figcaption>'
        f'<a href="{path.name}">{path.name}</a></figcaption></figure>'
        for name, path in figures.items()
    )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #bbb;padding:.3em .7em;text-align:right}th:first-child,td:first-child"
        "{text-align:left}figure{display:inline-block;margin:.5em}img{max-width:36em}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{summary['n_queries']} judged queries; a query missing from a run scores 0.</p>"
        f"<h2>Mean metrics</h2>{_table(['run', *metrics], mean_rows)}"
        f"<h2>Unique contribution</h2><p>Relevant (query, doc) pairs that only this branch has in its top "
        f"{unique['k']}.</p>{_table(['branch', 'pairs'], unique_rows)}"
        f"<h2>Figures</h2>{images}</body></html>\n"
    )


def write_report(
    out_dir: Path,
    branches: Mapping[str, Run],
    merged: Run,
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    merged_name: str = "merged",
    unique_k: int = 100,
    recall_ks: Sequence[int] = RECALL_CURVE_KS,
    title: str = "searchrec evaluation",
) -> ReportFiles:
    """Evaluate the merged run and every branch, then write the HTML report, figures and `metrics.json`."""
    if merged_name in branches:
        raise ValueError(f"branch name {merged_name!r} clashes with the merged run's name; rename the branch")
    if not qrels:
        raise ValueError("qrels are empty: nothing to evaluate")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Run] = {merged_name: merged, **branches}
    evaluations = evaluate_runs(runs, qrels, metrics)
    pr = {name: pr_curve(run, qrels).tolist() for name, run in runs.items()}
    recall = {name: recall_curve(run, qrels, recall_ks) for name, run in runs.items()}
    ndcg10, _ = evaluate_run(merged, qrels, ["ndcg@10"])
    summary = {
        "title": title,
        "n_queries": len(qrels),
        "metrics": list(metrics),
        "merged": merged_name,
        "runs": {name: {"mean": ev.mean, "per_query": ev.per_query} for name, ev in evaluations.items()},
        "pr_curve": {"recall_levels": list(ELEVEN_RECALL_LEVELS), "precision": pr},
        "recall_at_k": {name: {str(k): v for k, v in curve.items()} for name, curve in recall.items()},
        "unique_contribution": {
            "k": unique_k,
            "relevant_pairs": unique_contribution(branches, qrels, unique_k),
        },
    }
    figures = {
        "pr_curve": out_dir / "pr_curve.png",
        "recall_at_k": out_dir / "recall_at_k.png",
        "ndcg10_hist": out_dir / "ndcg10_hist.png",
    }
    _plot_pr(pr, figures["pr_curve"])
    _plot_recall(recall, figures["recall_at_k"])
    _plot_hist([values["ndcg@10"] for values in ndcg10.values()], merged_name, figures["ndcg10_hist"])
    metrics_json = out_dir / "metrics.json"
    metrics_json.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    html_path = out_dir / "report.html"
    html_path.write_text(_html(title, summary, figures), encoding="utf-8")
    return ReportFiles(html=html_path, metrics_json=metrics_json, figures=figures)
