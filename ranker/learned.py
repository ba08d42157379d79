"""The serving side of the learned ranker: a `Scorer` that computes features and applies the model.

`load_ranker(path, collection)` reads a ranker artifact, checks that its feature declaration can be
computed on this collection (and, given the pipeline's branch names, that every branch it reads runs), and
returns a `LearnedScorer`. Anything incompatible is refused at load with an `ArtifactError` (bad artifact)
or `UnsatisfiableDeclaration` (a `ValueError`: the collection lacks what a feature needs), never per
request. The scorer returns one score per candidate, in the order given: it never drops or reorders.

Coverage: a model ranks the requests of its training regime (`LearnedScorer.applies`): those of its task
(a search ranker ranks requests with text, a recommendation ranker requests without) on which every branch
a feature is gated on ran (`FeatureDeclaration.gates`, e.g. the dense branch). Any other request (a search
on a collection served with a recommendation ranker; the dense branch gated off for a CJK query on an
English-only encoder, failed or late) keeps the fusion order: the pipeline then scores it with fusion and
says so, and a direct `score` call returns the fused scores and logs nothing. A model trained on English
requests has never seen a Chinese lexical-only request ranked, and the fusion order is the safe answer
there. On a collection embedded by the multilingual encoder the dense branch runs for every query, so
coverage no longer keeps Chinese requests from such a model: the domain check below has to.

Bounded: the model scores at most `max_candidates` of the candidates (the best fused ones: the pipeline
hands them over in fusion order), as it was trained; the rest keep their fusion order below them.

Domain: a request of the right task whose features look unlike the training requests' (`ranker.domain`:
too many per-request statistics outside their training range) is answered in the fusion order too, with
the reason in `Scored.fallback`. `counts` tallies, per reason, how many requests were answered how.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ranker.artifact import RankerArtifact, read_ranker
from ranker.domain import DomainProfile
from ranker.features.collection import FeatureCollection
from ranker.features.extract import FeatureExtractor
from ranker.features.log import FeatureLogger
from ranker.models import RankingModel
from ranker.scoring import Candidate, FusionScorer, RankingContext, Scored

RANKED, OUT_OF_DOMAIN, OUT_OF_REGIME = "ranked", "out_of_domain", "out_of_regime"


class LearnedScorer:
    """Features (the training code path) + a trained model; `name` is the model type."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        model: RankingModel,
        *,
        name: str,
        version: str,
        task: str = "search",
        logger: FeatureLogger | None = None,
        collection_version: str | None = None,
        domain: DomainProfile | None = None,
        max_candidates: int | None = None,
    ) -> None:
        self.extractor = extractor
        self.domain = domain
        self.max_candidates = max_candidates
        self.counts: Counter[str] = Counter()  # requests by how they were answered: RANKED, OUT_OF_*
        self.model = model
        self.name = name
        self.version = version
        self.task = task
        self.logger = logger
        self.collection_version = collection_version

    @property
    def feature_names(self) -> list[str]:
        return self.extractor.names

    def for_collection(self, collection: FeatureCollection) -> LearnedScorer:
        """This scorer with its features computed over `collection` (the same version with items written
        since its build): the same model, declaration and request counts."""
        twin = copy.copy(self)
        twin.extractor = FeatureExtractor(self.extractor.declaration, collection)
        return twin

    def features(self, context: RankingContext, candidates: Sequence[Candidate]) -> np.ndarray:
        return self.extractor.extract(context, candidates)

    def applies(self, context: RankingContext, candidates: Sequence[Candidate]) -> bool:
        """Whether the model ranks this request (its task, its gated branches present); if not, the request
        keeps the fusion order."""
        is_search = bool(context.text.strip())
        return is_search == (self.task == "search") and self.extractor.covers(candidates)

    def score(self, context: RankingContext, candidates: Sequence[Candidate]) -> np.ndarray:
        return self.score_explained(context, candidates, explain=False).scores

    def explain(self, context: RankingContext, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
        """Per candidate (in the order given) its feature values by name, plus `_score`: the model's score."""
        return self.score_explained(context, candidates, explain=True).features or []

    def score_explained(
        self, context: RankingContext, candidates: Sequence[Candidate], *, explain: bool
    ) -> Scored:
        """The scores and, with `explain`, each candidate's features and `_score`, from one feature
        extraction and one model call (the request is logged once). A request outside the model's regime
        or domain gets the fused scores and the reason in `fallback`."""
        if not candidates:
            return Scored(np.zeros(0, dtype=np.float64), [] if explain else None)
        if not self.applies(context, candidates):
            self.counts[OUT_OF_REGIME] += 1
            return self._fused(context, candidates, explain, "outside the ranker's task or gated branches")
        head = candidates[: self.max_candidates] if self.max_candidates is not None else candidates
        matrix = self.extractor.extract(context, head)
        refusal = self.domain.refusal(self.extractor.names, matrix) if self.domain is not None else None
        if refusal is not None:
            self.counts[OUT_OF_DOMAIN] += 1
            return self._fused(context, candidates, explain, refusal, matrix)
        self.counts[RANKED] += 1
        ranked = np.asarray(self.model.predict(matrix), dtype=np.float64)
        if self.logger is not None:
            self.logger.log(
                context,
                self.extractor.ids_of(head),
                head,
                self.extractor.names,
                matrix,
                items=self.extractor.view.ids_of(np.asarray(context.items, dtype=np.int64)),
                ranker=self.name,
                ranker_version=self.version,
                collection_version=self.collection_version,
            )
        # The unscored tail ties below every scored candidate; the stable sort keeps its fusion order.
        scores = np.concatenate([ranked, np.full(len(candidates) - len(head), ranked.min() - 1.0)])
        if not explain:
            return Scored(scores)
        explained = self.extractor.as_dicts(matrix) + [{"_unscored": 1.0} for _ in candidates[len(head) :]]
        for row, score in zip(explained, scores.tolist(), strict=True):
            row["_score"] = score
        return Scored(scores, explained)

    def _fused(
        self,
        context: RankingContext,
        candidates: Sequence[Candidate],
        explain: bool,
        reason: str,
        matrix: np.ndarray | None = None,
    ) -> Scored:
        """The fusion order, with the reason; with `explain`, the features the model would have read."""
        fused = _FUSION.score(context, candidates)
        if not explain:
            return Scored(fused, None, reason)
        rows = self.extractor.as_dicts(matrix) if matrix is not None else []
        rows += [{} for _ in candidates[len(rows) :]]
        for row, score in zip(rows, fused.tolist(), strict=True):
            row.update({"_fusion_fallback": 1.0, "_score": score})
        return Scored(fused, rows, reason)


_FUSION = FusionScorer()


def load_ranker(
    path: Path,
    collection: FeatureCollection,
    *,
    branches: Iterable[str] | None = None,
    logger: FeatureLogger | None = None,
) -> LearnedScorer:
    """A `LearnedScorer` for `collection` from a ranker root or version directory.

    `branches`: the names of the recall branches the pipeline runs; when given, a feature reading the
    provenance of a branch that does not run is refused too.
    """
    artifact: RankerArtifact = read_ranker(path)
    extractor = FeatureExtractor(artifact.declaration, collection, branches=branches)
    return LearnedScorer(
        extractor,
        artifact.model,
        name=artifact.model_type,
        version=artifact.version,
        task=artifact.task,
        logger=logger,
        collection_version=getattr(collection, "version", None),
        domain=artifact.domain,
        max_candidates=artifact.max_candidates,
    )
