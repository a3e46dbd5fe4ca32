"""A client worker: one model instance that trains many virtual clients and reduces their updates.

Plain Python (no Ray): the in-process engine uses it directly, the Ray engine
wraps it in an actor. Each client's training is seeded by its task, so a client
gives the same model whichever worker trains it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from fedref_ray.aggregation import ClientRecord, PartialSum, UpdateScreen, client_weight, is_finite
from fedref_ray.algorithms import ClientContext, build_algorithm
from fedref_ray.config import ExperimentConfig
from fedref_ray.data.federated import FederatedData
from fedref_ray.flat_model import FlatModel
from fedref_ray.metrics import EvalCounts
from fedref_ray.models import build_model
from fedref_ray.params import Params
from fedref_ray.system import ClientTask, RoundWork
from fedref_ray.training import evaluation_counts, sgd_epochs


class SpareModels:
    """Frozen copies of the worker's network by key, built on first use (FedNTD's and MOON's reference models)."""

    def __init__(self, build: Callable[[], torch.nn.Module], device: str) -> None:
        self.build, self.device = build, device
        self.copies: dict[str, FlatModel] = {}

    def frozen(self, key: str, flat: torch.Tensor) -> torch.nn.Module:
        if key not in self.copies:
            with torch.random.fork_rng(devices=[]):  # building draws initial weights: keep torch's RNG untouched
                copy = FlatModel(self.build(), self.device)
            copy.model.eval()
            for p in copy.model.parameters():
                p.requires_grad_(False)
            self.copies[key] = copy
        self.copies[key].load(flat)
        return self.copies[key].model


class ClientWorker:
    """Trains the clients it is handed each round and returns one partial sum for all of them."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        data: FederatedData,
        input_shape: tuple[int, ...],
        num_classes: int,
        initial_params: Params,
        test: tuple[np.ndarray, np.ndarray],
        name: str = "local",
        device: str = "cpu",
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.x_test, self.y_test = test
        self.num_classes = num_classes
        self.name = name
        self.device = device
        self.flat_model = FlatModel(build_model(cfg.model.name, input_shape, num_classes, cfg.model.hidden), device)
        self.spares = SpareModels(
            lambda: build_model(cfg.model.name, input_shape, num_classes, cfg.model.hidden), device
        )
        self.algorithm = build_algorithm(cfg.algorithm)
        self.initial = self.flat_model.pack(initial_params)

    def node(self) -> str:
        """Where this worker runs; the Ray engine reports the node id."""
        return "local"

    def train(
        self,
        work: RoundWork,
        start: Params,
        broadcast: Mapping[str, Params],
        tasks: Sequence[ClientTask],
        states: Mapping[int, Mapping[str, np.ndarray]],
    ) -> PartialSum:
        """Train every task from `start` and reduce each accepted client's uploads as the algorithm weights them.

        The model upload is the update theta_k - start (summing updates rather than models keeps float32
        rounding relative to the update's size). A rejected client (non-finite upload) changes nothing,
        its state included. `states` holds the tasks' client state (flat arrays) where they have any.
        """
        fm, node, algorithm = self.flat_model, self.node(), self.algorithm
        start_flat = fm.pack(start)
        received = {name: fm.pack(tensor) for name, tensor in broadcast.items()}
        screen = UpdateScreen(start_flat, self.cfg.algorithm.clip_update_norm, self.cfg.algorithm.max_update_ratio)
        weightings = algorithm.upload_weightings()
        tensors = ("delta", *algorithm.upload_tensors)
        totals = {name: torch.zeros(fm.size, dtype=torch.float32, device=fm.device) for name in tensors}
        delta = torch.empty(fm.size, dtype=torch.float32, device=fm.device)
        partial = PartialSum()
        for task in sorted(tasks, key=lambda t: t.client_id):
            began = time.perf_counter()
            fm.load(start_flat)
            state = states.get(task.client_id)
            ctx = ClientContext(
                round=work.round,
                client_id=task.client_id,
                num_samples=task.num_samples,
                lr=self.cfg.training.lr,
                model=fm.model,
                flat=fm.flat,
                start=start_flat,
                received=received,
                state=None if state is None else {k: fm.to_device(v) for k, v in state.items()},
                layout=fm,
                spares=self.spares,
            )
            half = algorithm.client(ctx)
            stats = sgd_epochs(
                fm.model,
                self.data.x,
                self.data.y,
                self.data.client_indices(task.client_id),
                self.cfg.training,
                np.random.default_rng(task.train_seed),
                half=half,
                max_samples=task.max_samples,
                device=fm.device,
            )
            result = half.finish(fm.flat, stats.steps)
            accepted = screen(self.apply_fault(task, fm.flat))
            if accepted is not None and not all(is_finite(t) for t in result.tensors.values()):
                accepted = None
            if accepted is not None:
                torch.sub(accepted, start_flat, out=delta)
                self._accumulate(partial, totals, {"delta": delta, **result.tensors}, weightings, task.num_samples)
                for name, value in result.scalars.items():
                    w = client_weight(weightings[name], task.num_samples)
                    partial.scalars[name] = partial.scalars.get(name, 0.0) + w * float(value)
                    partial.weights[name] = partial.weights.get(name, 0.0) + w
                partial.loss_sum += task.num_samples * stats.loss
                partial.samples += task.num_samples
                if result.state is not None:
                    partial.states[task.client_id] = {k: v.detach().cpu().numpy() for k, v in result.state.items()}
            partial.records.append(
                ClientRecord(
                    round=work.round,
                    client_id=task.client_id,
                    samples=task.num_samples,
                    processed=stats.samples,
                    loss=stats.loss,
                    seconds=time.perf_counter() - began,
                    bytes_down=work.bytes_down,
                    bytes_up=work.bytes_up,
                    fault=task.fault,
                    rejected=accepted is None,
                    worker=self.name,
                    node=node,
                )
            )
        if partial.samples > 0:
            partial.sums = {name: fm.unpack(total) for name, total in totals.items()}
        return partial

    @staticmethod
    def _accumulate(
        partial: PartialSum,
        totals: dict[str, torch.Tensor],
        uploads: Mapping[str, torch.Tensor],
        weightings: Mapping[str, str],
        num_samples: int,
    ) -> None:
        for name, tensor in uploads.items():
            w = client_weight(weightings[name], num_samples)
            totals[name].add_(tensor, alpha=w)
            partial.weights[name] = partial.weights.get(name, 0.0) + w

    def evaluate(self, params: Params, begin: int, end: int) -> EvalCounts:
        """Counts of the global model on test samples [begin, end): workers share the evaluation."""
        fm = self.flat_model
        fm.load(fm.pack(params))
        return evaluation_counts(
            fm.model,
            self.x_test[begin:end],
            self.y_test[begin:end],
            self.num_classes,
            self.cfg.training.eval_batch_size,
            fm.device,
        )

    def warm_up(self) -> None:
        """One throwaway step on two samples, so kernel set-up happens at start-up and not in round 1."""
        if self.data.num_clients == 0 or len(self.data.indices) == 0:
            return
        fm = self.flat_model
        saved = fm.flat.clone()
        sgd_epochs(
            fm.model, self.data.x, self.data.y, self.data.indices[:2], self.cfg.training, np.random.default_rng(0)
        )
        evaluation_counts(fm.model, self.x_test[:2], self.y_test[:2], self.num_classes, 2, fm.device)
        fm.load(saved)

    def apply_fault(self, task: ClientTask, trained: torch.Tensor) -> torch.Tensor:
        """METHOD.md's unbounded drift: a stale update is the initial model, a noisy one gets Gaussian noise."""
        if task.fault == "nan":
            return torch.full_like(trained, float("nan"))
        if task.fault == "stale":
            return self.initial
        if task.fault == "noise":
            rng = np.random.default_rng(task.fault_seed)
            noise = rng.standard_normal(len(trained)) * self.cfg.system.fault_noise_std
            return (trained.double() + torch.from_numpy(noise).to(trained.device)).float()
        return trained


def select_device(gpus_per_worker: float) -> str:
    """CUDA when this worker asked for a GPU share and one is visible, else the CPU."""
    return "cuda" if gpus_per_worker > 0 and torch.cuda.is_available() else "cpu"
