"""The federated algorithms: the built-ins by config name, and user algorithms by import path."""

from __future__ import annotations

from fedref_ray.algorithms.base import (
    Aggregate,
    Algorithm,
    ClientContext,
    ClientHalf,
    ClientResult,
    NoParams,
    NoState,
    ServerUpdate,
)
from fedref_ray.algorithms.fedavg import FedAvg
from fedref_ray.algorithms.fedavgm import FedAvgM
from fedref_ray.algorithms.fedcurv import FedCurv
from fedref_ray.algorithms.feddyn import FedDyn
from fedref_ray.algorithms.fedntd import FedNTD
from fedref_ray.algorithms.fedopt import FedAdagrad, FedOpt
from fedref_ray.algorithms.fedprox import FedProx
from fedref_ray.algorithms.fedref import FedRef
from fedref_ray.algorithms.moon import Moon
from fedref_ray.algorithms.registry import BUILTIN_ALGORITHMS, algorithm_class, build_algorithm
from fedref_ray.algorithms.scaffold import Scaffold

__all__ = [
    "BUILTIN_ALGORITHMS",
    "Aggregate",
    "Algorithm",
    "ClientContext",
    "ClientHalf",
    "ClientResult",
    "FedAdagrad",
    "FedAvg",
    "FedAvgM",
    "FedCurv",
    "FedDyn",
    "FedNTD",
    "FedOpt",
    "FedProx",
    "FedRef",
    "Moon",
    "NoParams",
    "NoState",
    "Scaffold",
    "ServerUpdate",
    "algorithm_class",
    "build_algorithm",
]
