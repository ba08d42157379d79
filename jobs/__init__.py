"""Offline jobs over the online pipeline: ranker training, evaluation runs, rebuilds on a behaviour history.

They sit above `retrieval/` (they open collections and run the service's own pipeline, so what they learn
from and measure is what a served request gets) and below `api/` (the CLI runs them). `retrieval/` itself
only loads artifacts and answers requests.

- `train_ranker`: train the `/search` and `/recommend` rankers and publish them as ranker artifacts.
- `history`: split a behaviour log into history and held-out events, rebuild a collection on the history.
- `holdout`: leave-last-out evaluation of `/recommend` against baselines.
- `evaluation/`: TREC runs and qrels, metrics, significance, reports, recommendation metrics and baselines.
"""
