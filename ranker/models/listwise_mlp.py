"""A small MLP trained with a list-wise softmax loss (ListNet top-one), early-stopped on nDCG@10.

Inputs are standardised with the training rows' mean and standard deviation (stored with the weights).
Two hidden ReLU layers. The loss per list is the cross-entropy between the softmax of the scores and the
target distribution (2^grade - 1, normalised); lists without a relevant candidate carry no gradient and are
skipped in training (they still count, as 0, in the validation nDCG).

Training is reproducible: initial weights, dropout and the list order come from the seed, and `fit` runs
torch with one intra-op thread and deterministic algorithms (both restored afterwards), so the weights do not
depend on the core count and two runs write identical files. One thread is also the faster choice for a net
this small: on two cores shared with other work (load average about 11), a synthetic fit of 400 lists of 50
took 8 s with one thread and 235 s with two, back to back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from ranker.models.base import Groups, mean_ndcg

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.json"


def _network(n_features: int, hidden: tuple[int, int], dropout: float) -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Linear(n_features, hidden[0]),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden[0], hidden[1]),
        nn.ReLU(),
        nn.Linear(hidden[1], 1),
    )


def _padded(groups: Groups, mean: np.ndarray, std: np.ndarray) -> tuple[Any, Any, Any]:
    """(Q, L, F) standardised features, (Q, L) target distributions and (Q, L) validity masks."""
    import torch

    n_lists, width = len(groups), int(groups.sizes.max(initial=1))
    x = np.zeros((n_lists, width, groups.features.shape[1]), dtype=np.float32)
    target = np.zeros((n_lists, width), dtype=np.float32)
    mask = np.zeros((n_lists, width), dtype=bool)
    for q, s in enumerate(groups.slices()):
        n = s.stop - s.start
        x[q, :n] = (groups.features[s] - mean) / std
        gains = np.exp2(np.maximum(groups.labels[s], 0)) - 1.0
        if gains.sum() > 0:
            target[q, :n] = gains / gains.sum()
        mask[q, :n] = True
    return torch.from_numpy(x), torch.from_numpy(target), torch.from_numpy(mask)


@contextmanager
def _reproducible_torch() -> Iterator[None]:
    """One intra-op thread and deterministic algorithms inside, torch's previous settings after."""
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


class ListwiseMlp:
    kind: ClassVar[str] = "listwise_mlp"

    def __init__(
        self,
        *,
        hidden: tuple[int, int] = (64, 32),
        dropout: float = 0.1,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        batch_lists: int = 32,
        epochs: int = 200,
        patience: int = 25,
    ) -> None:
        self.config: dict[str, Any] = {
            "hidden": list(hidden),
            "dropout": dropout,
            "lr": lr,
            "weight_decay": weight_decay,
            "batch_lists": batch_lists,
            "epochs": epochs,
            "patience": patience,
        }
        self.net: Any = None
        self.mean = np.zeros(0)
        self.std = np.ones(0)

    def fit(self, train: Groups, valid: Groups, *, seed: int) -> dict[str, Any]:
        with _reproducible_torch():
            return self._fit(train, valid, seed)

    def _fit(self, train: Groups, valid: Groups, seed: int) -> dict[str, Any]:
        import torch

        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        cfg = self.config
        self.mean = train.features.mean(axis=0)
        std = train.features.std(axis=0)
        self.std = np.where(std > 1e-9, std, 1.0)
        self.net = _network(train.features.shape[1], tuple(cfg["hidden"]), cfg["dropout"])
        optimiser = torch.optim.Adam(self.net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        x, target, mask = _padded(train, self.mean, self.std)
        useful = torch.nonzero(target.sum(dim=1) > 0).flatten()
        best: tuple[float, int, dict[str, Any]] = (-1.0, 0, {})
        for epoch in range(cfg["epochs"]):
            self.net.train()
            order = useful[torch.randperm(len(useful), generator=generator)]
            for start in range(0, len(order), cfg["batch_lists"]):
                batch = order[start : start + cfg["batch_lists"]]
                scores = self.net(x[batch]).squeeze(-1).masked_fill(~mask[batch], float("-inf"))
                log_p = torch.log_softmax(scores, dim=1).masked_fill(~mask[batch], 0.0)
                loss = -(target[batch] * log_p).sum(dim=1).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            score = mean_ndcg(valid, self.predict(valid.features))
            if score > best[0]:
                best = (score, epoch, {k: v.detach().clone() for k, v in self.net.state_dict().items()})
            elif epoch - best[1] >= cfg["patience"]:
                break
        self.net.load_state_dict(best[2])
        return {
            "best_epoch": best[1],
            "epochs_run": epoch + 1,
            "train_ndcg@10": mean_ndcg(train, self.predict(train.features)),
            "valid_ndcg@10": mean_ndcg(valid, self.predict(valid.features)),
        }

    def predict(self, features: np.ndarray) -> np.ndarray:
        import torch

        if self.net is None:
            raise RuntimeError("the model is not trained")
        self.net.eval()
        x = torch.from_numpy(((features - self.mean) / self.std).astype(np.float32))
        with torch.no_grad():
            return self.net(x).squeeze(-1).double().numpy()

    def save(self, directory: Path) -> list[str]:
        import torch

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), directory / WEIGHTS_FILE)
        config = {
            **self.config,
            "n_features": len(self.mean),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        return [WEIGHTS_FILE, CONFIG_FILE]

    @classmethod
    def load(cls, directory: Path) -> Self:
        import torch

        directory = Path(directory)
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        knobs: dict[str, Any] = {k: v for k, v in config.items() if k in _KNOBS}
        model = cls(**{**knobs, "hidden": tuple(config["hidden"])})
        model.mean = np.asarray(config["mean"], dtype=np.float64)
        model.std = np.asarray(config["std"], dtype=np.float64)
        model.net = _network(config["n_features"], tuple(config["hidden"]), config["dropout"])
        model.net.load_state_dict(torch.load(directory / WEIGHTS_FILE, weights_only=True))
        model.net.eval()
        return model

    @property
    def n_features(self) -> int:
        return len(self.mean)


_KNOBS = ("hidden", "dropout", "lr", "weight_decay", "batch_lists", "epochs", "patience")
