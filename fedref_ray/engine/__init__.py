"""Engines run the rounds: `local` in this process, `ray` on a pool of Ray actors."""

from __future__ import annotations

from fedref_ray.config import ExperimentConfig
from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.federated import FederatedData
from fedref_ray.engine.base import Engine, initial_params
from fedref_ray.params import Params


def create_engine(cfg: ExperimentConfig, arrays: DatasetArrays, data: FederatedData, start: Params) -> Engine:
    """The engine named by `engine.name` (Ray is imported only when used)."""
    if cfg.engine.name == "local":
        from fedref_ray.engine.local import LocalEngine

        return LocalEngine(cfg, arrays, data, start)
    from fedref_ray.engine.ray_engine import RayEngine

    return RayEngine(cfg, arrays, data, start)


__all__ = ["Engine", "create_engine", "initial_params"]
