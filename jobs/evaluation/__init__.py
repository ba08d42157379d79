"""Offline evaluation: TREC runs and qrels, trec_eval-compatible metrics, significance, reports, recsys.

The metric formulas live in `ranker.metrics` (shared with the ranker's training job); this package reads
and writes the files around them, compares runs and writes reports. `report` (matplotlib) and `recommend`
(scipy) are imported from their modules, so importing this package stays light.
"""

from __future__ import annotations

from jobs.evaluation.datasets import (
    check_qrels_match_queries,
    check_run_docids,
    read_qrels,
    read_queries,
    read_run,
    write_run,
)
from jobs.evaluation.evaluate import (
    DEFAULT_METRICS,
    RunEvaluation,
    evaluate_run_files,
    evaluate_runs,
    format_means,
    format_table,
    pr_curve,
    recall_curve,
    unique_contribution,
)
from jobs.evaluation.significance import (
    PermutationTestResult,
    QueryChange,
    most_changed_queries,
    paired_randomization_test,
)

__all__ = [
    "DEFAULT_METRICS",
    "PermutationTestResult",
    "QueryChange",
    "RunEvaluation",
    "check_qrels_match_queries",
    "check_run_docids",
    "evaluate_run_files",
    "evaluate_runs",
    "format_means",
    "format_table",
    "most_changed_queries",
    "paired_randomization_test",
    "pr_curve",
    "read_qrels",
    "read_queries",
    "read_run",
    "recall_curve",
    "unique_contribution",
    "write_run",
]
