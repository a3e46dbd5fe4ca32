"""The per-round metrics a trial reports to Tune (one `RoundRecord` in, one flat dict of numbers out)."""

from __future__ import annotations

import time

from fedref_ray.metrics import RoundRecord

# Reported every round; any of them except `round` can drive a scheduler or pick the best trial.
METRIC_NAMES = (
    "round",
    "test_accuracy",
    "test_loss",
    "forgetting",
    "accuracy_drops",
    "train_loss",
    "bytes_down",
    "bytes_up",
    "bytes_total",
    "samples",
    "sim_seconds",
    "wall_seconds",
    "clients_reported",
    "clients_rejected",
)
# Wall-clock stamps (Unix seconds) of the trial's start and of this report: when trials overlapped.
TIME_NAMES = ("started_at", "reported_at")


def round_metrics(record: RoundRecord, started_at: float) -> dict[str, float | int]:
    """The numbers Tune sees for one round; costs are cumulative, `bytes_total` = down + up."""
    return {
        "round": record.round,
        "test_accuracy": record.test_accuracy,
        "test_loss": record.test_loss,
        "forgetting": record.forgetting,
        "accuracy_drops": record.accuracy_drops,
        "train_loss": record.train_loss,
        "bytes_down": record.bytes_down,
        "bytes_up": record.bytes_up,
        "bytes_total": record.bytes_down + record.bytes_up,
        "samples": record.samples,
        "sim_seconds": record.sim_seconds,
        "wall_seconds": record.wall_seconds,
        "clients_reported": record.clients_reported,
        "clients_rejected": record.clients_rejected,
        "started_at": started_at,
        "reported_at": time.time(),
    }
