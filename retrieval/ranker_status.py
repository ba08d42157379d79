"""What scores a collection's candidates: the learned ranker asked for, or the fusion order and why.

A ranker a collection cannot serve (unreadable, newer than this code, features the collection cannot
compute) is refused when the collection opens, not at the first request: `load_scorer` returns the fusion
order with the reason in `RankerStatus.error`, which `/readyz` and the eval CLI show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from indexer.artifact import ArtifactError
from indexer.versions import VersionStore
from ranker.features import FeatureCollection, FeatureLogger
from ranker.learned import load_ranker
from ranker.scoring import FusionScorer, Scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RankerStatus:
    """What scores a collection's candidates: the learned ranker asked for, or fusion and why."""

    scorer: str
    version: str
    path: str | None = None
    error: str | None = None  # set when a ranker was asked for and refused: the fusion order serves
    published: str | None = None  # the ranker root's published version when it was loaded
    error_path: str | None = None  # with `error`, when a file is to blame: the ranker version directory
    error_file: str | None = None  # and that file, relative to it (e.g. model/model.txt)

    @property
    def serving(self) -> bool:
        """Whether the learned ranker asked for scores this collection's candidates."""
        return self.path is not None and self.error is None

    def as_dict(self) -> dict[str, str | None]:
        return {"scorer": self.scorer, "version": self.version, "path": self.path, "error": self.error}

    def stale(self) -> bool:
        """Whether the ranker root has published another version since this one was loaded."""
        if self.path is None or self.published is None:
            return False
        return VersionStore(Path(self.path)).current_name() not in (None, self.published)


def load_scorer(
    path: Path, collection: FeatureCollection, name: str, branches: list[str], feature_log: Path | None
) -> tuple[Scorer | None, RankerStatus]:
    """The ranker at `path` for `collection` (called `name`), or (None: fusion, the reason) when it cannot
    serve it."""
    published = VersionStore(path).current_name()  # read first: a later publish shows up as stale
    try:
        if not path.exists():
            raise FileNotFoundError(f"ranker path {path} does not exist")
        logger = FeatureLogger(feature_log) if feature_log is not None else None
        scorer = load_ranker(path, collection, branches=branches, logger=logger)
    except (ArtifactError, ValueError, OSError) as error:
        log.error("ranker %s refused for collection %s, serving the fusion order: %s", path, name, error)
        fusion = FusionScorer()
        refused = f"ranker refused: {error}"
        status = RankerStatus(fusion.name, fusion.version, str(path), refused, published)
        if isinstance(error, ArtifactError) and error.path is not None and error.file is not None:
            status = replace(status, error_path=str(error.path), error_file=error.file)
        return None, status
    return scorer, RankerStatus(scorer.name, scorer.version, str(path), published=published)
