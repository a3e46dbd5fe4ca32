"""A client worker: one model instance that trains many virtual clients and reduces their updates.

Plain Python (no Ray): the in-process engine uses it directly, the Ray engine
wraps it in an actor. Each client's training is seeded by its task, so a client
gives the same model whichever worker trains it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from fedref_ray.aggregation import ClientRecord, PartialSum, screen_update
from fedref_ray.config import ExperimentConfig
from fedref_ray.data.federated import FederatedData
from fedref_ray.models import build_model
from fedref_ray.params import Params, to_float32
from fedref_ray.system import ClientTask
from fedref_ray.training import local_train


class ClientWorker:
    """Trains the clients it is handed each round and returns one partial sum for all of them."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        data: FederatedData,
        input_shape: tuple[int, ...],
        num_classes: int,
        initial_params: Params,
        name: str = "local",
        device: str = "cpu",
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.initial_params = initial_params
        self.name = name
        self.device = device
        self.model = build_model(cfg.model.name, input_shape, num_classes, cfg.model.hidden)

    def node(self) -> str:
        """Where this worker runs; the Ray engine reports the node id."""
        return "local"

    def train(
        self,
        round_: int,
        start: Params,
        anchor: Params | None,
        mu: float,
        tasks: Sequence[ClientTask],
        bytes_down: int,
        bytes_up: int,
    ) -> PartialSum:
        """Train every task from `start` and reduce the accepted models to a weighted partial sum."""
        partial = PartialSum()
        node = self.node()
        for task in sorted(tasks, key=lambda t: t.client_id):
            began = time.perf_counter()
            result = local_train(
                self.model,
                start,
                self.data.x,
                self.data.y,
                self.data.client_indices(task.client_id),
                self.cfg.training,
                np.random.default_rng(task.train_seed),
                mu=mu,
                anchor=anchor if anchor is not None else start,
                max_samples=task.max_samples,
                device=self.device,
            )
            params = self.apply_fault(task, result.params)
            accepted = screen_update(params, start, self.cfg.algorithm.clip_update_norm)
            if accepted is not None:
                partial.add(accepted, task.num_samples, result.loss)
            partial.records.append(
                ClientRecord(
                    round=round_,
                    client_id=task.client_id,
                    samples=task.num_samples,
                    processed=result.samples,
                    loss=result.loss,
                    seconds=time.perf_counter() - began,
                    bytes_down=bytes_down,
                    bytes_up=bytes_up,
                    fault=task.fault,
                    rejected=accepted is None,
                    worker=self.name,
                    node=node,
                )
            )
        return partial

    def apply_fault(self, task: ClientTask, params: Params) -> Params:
        """METHOD.md's unbounded drift: a stale update is the initial model, a noisy one gets Gaussian noise."""
        if task.fault == "stale":
            return self.initial_params
        if task.fault == "noise":
            rng = np.random.default_rng(task.fault_seed)
            std = self.cfg.system.fault_noise_std
            return to_float32({k: v + std * rng.standard_normal(v.shape) for k, v in params.items()})
        return params


def select_device(gpus_per_worker: float) -> str:
    """CUDA when this worker asked for a GPU share and one is visible, else the CPU."""
    return "cuda" if gpus_per_worker > 0 and torch.cuda.is_available() else "cpu"
