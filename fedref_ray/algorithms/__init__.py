"""The federated algorithms, by config name."""

from __future__ import annotations

from fedref_ray.algorithms.base import ClientObjective, FedAvg, ServerState, ServerUpdate
from fedref_ray.algorithms.fedopt import FedOpt
from fedref_ray.algorithms.fedprox import FedProx
from fedref_ray.algorithms.fedref import FedRef
from fedref_ray.config import AlgorithmConfig

ALGORITHMS: dict[str, type[FedAvg]] = {cls.name: cls for cls in (FedAvg, FedProx, FedOpt, FedRef)}


def build_algorithm(cfg: AlgorithmConfig) -> FedAvg:
    """The algorithm object for `algorithm.name` (validated by the config already)."""
    return ALGORITHMS[cfg.name](cfg)


__all__ = [
    "ALGORITHMS",
    "ClientObjective",
    "FedAvg",
    "FedOpt",
    "FedProx",
    "FedRef",
    "ServerState",
    "ServerUpdate",
    "build_algorithm",
]
