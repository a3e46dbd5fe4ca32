"""Per-round records and the measures METHOD.md asks for (forgetting, accuracy drops, costs to target).

Results are data: one `RoundRecord` feeds the Parquet writer, the progress bar and Tune alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class RoundRecord:
    """One row of rounds.parquet; costs (bytes, samples) are cumulative since round 1."""

    round: int
    wall_seconds: float
    sim_seconds: float
    test_accuracy: float
    test_loss: float
    class_accuracy: list[float]
    forgetting: float
    accuracy_drops: int
    train_loss: float
    bytes_down: int
    bytes_up: int
    samples: int
    clients_sampled: int
    clients_reported: int
    clients_rejected: int
    server_step_applied: bool
    workers_nodes: list[str] = field(default_factory=list)

    def to_row(self) -> dict:
        return asdict(self)


@dataclass
class ForgettingTracker:
    """Forgetting = mean over classes of (best class accuracy so far - current class accuracy)."""

    best: np.ndarray | None = None
    last_accuracy: float | None = None
    drops: int = 0

    def update(self, accuracy: float, class_accuracy: list[float]) -> tuple[float, int]:
        """Feed this round's evaluation; return (forgetting, cumulative count of rounds whose accuracy fell)."""
        current = np.asarray(class_accuracy, dtype=float)
        self.best = current.copy() if self.best is None else np.fmax(self.best, current)
        gap = self.best - current
        forgetting = float(np.nanmean(gap)) if np.isfinite(gap).any() else 0.0
        if self.last_accuracy is not None and accuracy < self.last_accuracy:
            self.drops += 1
        self.last_accuracy = accuracy
        return forgetting, self.drops


@dataclass
class CostCounter:
    """Cumulative bytes down, bytes up and client samples processed."""

    bytes_down: int = 0
    bytes_up: int = 0
    samples: int = 0


def to_target(rows: list[dict], target: float) -> dict:
    """Rounds, bytes (down + up) and samples spent until the first round reaching `target` accuracy."""
    for row in rows:
        if row["test_accuracy"] >= target:
            return {
                "rounds_to_target": int(row["round"]),
                "bytes_to_target": int(row["bytes_down"] + row["bytes_up"]),
                "samples_to_target": int(row["samples"]),
            }
    return {"rounds_to_target": None, "bytes_to_target": None, "samples_to_target": None}


@dataclass(frozen=True)
class Evaluation:
    """Accuracy, mean cross-entropy and per-class accuracy of one model on one test set."""

    accuracy: float
    loss: float
    class_accuracy: list[float]


@dataclass(frozen=True)
class EvalCounts:
    """Additive evaluation counts of one slice of the test set, so slices can be evaluated in parallel."""

    correct: np.ndarray
    count: np.ndarray
    loss_sum: float


def summarize(parts: list[EvalCounts]) -> Evaluation:
    """Merge slice counts (in the given order); classes absent from the test set get accuracy NaN."""
    correct = sum(p.correct for p in parts)
    count = sum(p.count for p in parts)
    loss_sum = sum(p.loss_sum for p in parts)
    total = int(count.sum())
    per_class = np.where(count > 0, correct / np.maximum(count, 1), np.nan)
    return Evaluation(accuracy=float(correct.sum() / total), loss=loss_sum / total, class_accuracy=per_class.tolist())
