"""The benchmark workloads W1 and W2 as fedref-ray overrides, shared by every script in benchmarks/.

W1: 100 clients, 10 per round, 20 rounds. W2: 1,000 clients, 100 per round, 3 rounds.
Both: mnist5k (4,000 train images), Dirichlet(0.5), 1 local epoch, batch 32, SGD lr 0.05,
femnist_cnn (10 outputs), FedAvg, a test-set evaluation every round.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Anything that starts Ray from these scripts must agree on the auth mode (see README).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from fedref_ray.config import ExperimentConfig, load_config  # noqa: E402

COMMON: list[str] = [
    "data.name=mnist5k",
    "data.num_train=4000",
    "partition.name=dirichlet",
    "partition.alpha=0.5",
    "training.local_epochs=1",
    "training.batch_size=32",
    "training.lr=0.05",
    "training.momentum=0",
    "training.weight_decay=0",
    "model.name=femnist_cnn",
    "algorithm.name=fedavg",
    "run.seed=0",
]

W1: list[str] = [*COMMON, "partition.num_clients=100", "run.clients_per_round=10", "run.rounds=20"]
W2: list[str] = [*COMMON, "partition.num_clients=1000", "run.clients_per_round=100", "run.rounds=3"]

WORKLOADS: dict[str, list[str]] = {"W1": W1, "W2": W2}


def workload_names(choice: str) -> list[str]:
    """`W1`, `W2` or `both` as the list of workload names to run."""
    return list(WORKLOADS) if choice == "both" else [choice]


def build(name: str, *extra: str, rounds: int | None = None) -> ExperimentConfig:
    """The ExperimentConfig of workload `name` with `extra` overrides on top (and `rounds` if given)."""
    overrides = [*WORKLOADS[name], *extra]
    if rounds is not None:
        overrides.append(f"run.rounds={rounds}")
    return load_config(None, overrides)


def overrides(name: str, *extra: str, rounds: int | None = None) -> list[str]:
    """The override list of workload `name` (for `fedref-ray run` on the command line)."""
    out = [*WORKLOADS[name], *extra]
    if rounds is not None:
        out.append(f"run.rounds={rounds}")
    return out
