"""The engine interface: start, run rounds, hand back the global model, close.

`LocalEngine` defines the semantics; `RayEngine` must give the same results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from fedref_ray.aggregation import ClientRecord
from fedref_ray.checkpoint import ServerSnapshot
from fedref_ray.config import ExperimentConfig
from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.federated import FederatedData
from fedref_ray.metrics import RoundRecord
from fedref_ray.params import Params, params_from_model
from fedref_ray.seeding import derive_seed


def initial_params(cfg: ExperimentConfig, input_shape: tuple[int, ...], num_classes: int) -> Params:
    """theta_0: the model's initial weights, seeded from the run seed without touching torch's global RNG."""
    import torch  # not at module level: the server actor imports this package and never needs torch

    from fedref_ray.models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.run.seed, "init"))
        model = build_model(cfg.model.name, input_shape, num_classes, cfg.model.hidden)
    return params_from_model(model)


def client_state_dir(cfg: ExperimentConfig) -> str | None:
    """Where the server keeps per-client state: `client_state/` in the results folder (absolute, for actors)."""
    if cfg.run.results_dir is None:
        return None
    return str(Path(cfg.run.results_dir).expanduser().resolve() / "client_state")


class Engine(ABC):
    """Runs a prepared experiment round by round."""

    def __init__(self, cfg: ExperimentConfig, arrays: DatasetArrays, data: FederatedData, start: Params) -> None:
        self.cfg, self.arrays, self.data, self.start = cfg, arrays, data, start

    @abstractmethod
    def run_round(self) -> tuple[RoundRecord, list[ClientRecord]]:
        """Run the next round; return its record and per-client rows."""

    @abstractmethod
    def params(self) -> Params:
        """The current global model."""

    @abstractmethod
    def snapshot(self) -> ServerSnapshot:
        """The server's state for a checkpoint."""

    @abstractmethod
    def restore(self, snapshot: ServerSnapshot) -> None:
        """Continue from a checkpoint."""

    def close(self) -> None:  # noqa: B027 - optional hook: the local engine starts nothing
        """Release what the engine started (idempotent)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
