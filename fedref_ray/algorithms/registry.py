"""Which class `algorithm.name` means: a built-in by its name, or a user's Algorithm subclass by import path."""

from __future__ import annotations

import dataclasses

from fedref_ray.algorithms.base import Algorithm
from fedref_ray.algorithms.fedavg import FedAvg
from fedref_ray.algorithms.fedavgm import FedAvgM
from fedref_ray.algorithms.fedcurv import FedCurv
from fedref_ray.algorithms.feddyn import FedDyn
from fedref_ray.algorithms.fedntd import FedNTD
from fedref_ray.algorithms.fedopt import FedAdagrad, FedOpt
from fedref_ray.algorithms.fedprox import FedProx
from fedref_ray.algorithms.fedref import FedRef
from fedref_ray.algorithms.moon import Moon
from fedref_ray.algorithms.scaffold import Scaffold
from fedref_ray.errors import UserError
from fedref_ray.imports import is_import_path, load_object

BUILTIN_ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls
    for cls in (FedAvg, FedProx, FedOpt, FedRef, Scaffold, FedDyn, FedCurv, FedNTD, Moon, FedAvgM, FedAdagrad)
}


def algorithm_class(name: str) -> type[Algorithm]:
    """The Algorithm subclass `algorithm.name` names; anything else is a UserError naming the field."""
    if not is_import_path(name):
        if name not in BUILTIN_ALGORITHMS:
            raise UserError(
                f"algorithm.name={name!r} is not allowed: one of {', '.join(BUILTIN_ALGORITHMS)}, "
                "or an import path 'package.module:Class'"
            )
        return BUILTIN_ALGORITHMS[name]
    cls = load_object("algorithm.name", name)
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise UserError(f"algorithm.name={name!r} is not a subclass of fedref_ray.Algorithm")
    if not (dataclasses.is_dataclass(cls.Params) and cls.Params.__dataclass_params__.frozen):
        raise UserError(f"algorithm.name={name!r}: its Params must be a frozen dataclass")
    return cls


def parameter_keys(name: str) -> tuple[str, ...]:
    """The coefficient keys algorithm `name` takes (its Params fields)."""
    return tuple(f.name for f in dataclasses.fields(algorithm_class(name).Params))


def build_algorithm(cfg) -> Algorithm:
    """The algorithm object an `AlgorithmConfig` describes."""
    return algorithm_class(cfg.name)(cfg.params)
