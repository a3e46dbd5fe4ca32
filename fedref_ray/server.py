"""The server: owns the global model and the algorithm's state, runs one round at a time.

Plain Python (no Ray). It samples clients, plans the round, hands the tasks to a
client pool, runs the algorithm's server half and evaluates; the Ray engine runs
this same class inside an actor.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Protocol

import numpy as np

from fedref_ray.aggregation import ClientRecord, PartialSum, merge
from fedref_ray.algorithms import ServerState, build_algorithm
from fedref_ray.checkpoint import ServerSnapshot
from fedref_ray.config import ExperimentConfig
from fedref_ray.metrics import CostCounter, Evaluation, ForgettingTracker, RoundRecord
from fedref_ray.params import Params, num_bytes
from fedref_ray.seeding import sample_clients
from fedref_ray.system import ClientProfiles, ClientTask, RoundWork, plan_round


class ClientPool(Protocol):
    """Whatever trains the round's clients: one in-process worker, or a pool of Ray actors."""

    def train(self, work: RoundWork, start: Params, anchor: Params | None, tasks: list[ClientTask]) -> list[PartialSum]:
        """Train `tasks` from `start` (toward `anchor` when work.mu > 0): one partial sum per worker."""
        ...

    def evaluate(self, params: Params) -> Evaluation: ...


class Server:
    """Round loop state: global model, reference history, costs and forgetting so far."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        initial_params: Params,
        num_classes: int,
        client_sizes: np.ndarray,
        pool: ClientPool,
    ) -> None:
        self.cfg = cfg
        self.algorithm = build_algorithm(cfg.algorithm)
        self.state: ServerState = self.algorithm.init_state(initial_params)
        self.num_classes = num_classes
        self.client_sizes = np.asarray(client_sizes)
        self.pool = pool
        self.profiles = ClientProfiles.draw(cfg.system, len(self.client_sizes), cfg.run.seed)
        self.forgetting = ForgettingTracker()
        self.costs = CostCounter()
        self.model_bytes = num_bytes(initial_params)

    def params(self) -> Params:
        return self.state.params

    def round_number(self) -> int:
        """Rounds completed so far."""
        return self.state.round

    def snapshot(self) -> ServerSnapshot:
        """The state a checkpoint needs to continue this run exactly."""
        f, c = self.forgetting, self.costs
        best = None if f.best is None else f.best.tolist()
        return ServerSnapshot(self.state, best, f.last_accuracy, f.drops, c.bytes_down, c.bytes_up, c.samples)

    def restore(self, snap: ServerSnapshot) -> None:
        """Continue from a checkpoint (the inverse of `snapshot`)."""
        self.state = snap.state
        best = None if snap.best_class_accuracy is None else np.asarray(snap.best_class_accuracy, dtype=float)
        self.forgetting = ForgettingTracker(best=best, last_accuracy=snap.last_accuracy, drops=snap.accuracy_drops)
        self.costs = CostCounter(bytes_down=snap.bytes_down, bytes_up=snap.bytes_up, samples=snap.samples)

    def run_round(self) -> tuple[RoundRecord, list[ClientRecord]]:
        """Run round `state.round + 1` end to end and return its record and per-client rows."""
        began = time.perf_counter()
        cfg, round_ = self.cfg, self.state.round + 1
        objective = self.algorithm.client_objective()
        anchor = self.state.reference if (objective.anchor == "reference") else None
        down = self.model_bytes * (2 if anchor is not None else 1)
        up = self.model_bytes
        sampled = sample_clients(cfg.run.seed, round_, len(self.client_sizes), cfg.run.clients_per_round)
        plan = plan_round(
            round_,
            sampled,
            self.client_sizes,
            cfg.training.local_epochs,
            down,
            up,
            cfg.system,
            self.profiles,
            cfg.run.seed,
        )
        partials = (
            self.pool.train(RoundWork(round_, objective.mu, down, up), self.state.params, anchor, list(plan.tasks))
            if plan.tasks
            else []
        )
        aggregate, mean_loss, clients = merge(partials, self.state.params)
        if aggregate is None:  # nobody reported: the global model stays
            self.state = dataclasses.replace(self.state, round=round_)
            applied = False
        else:
            update = self.algorithm.server_update(self.state, aggregate, mean_loss)
            self.state, applied = update.state, update.step_applied
        ev = self.pool.evaluate(self.state.params)
        forgetting, drops = self.forgetting.update(ev.accuracy, ev.class_accuracy)
        self.costs.bytes_down += down * (len(plan.tasks) + len(plan.dropped))
        self.costs.bytes_up += up * len(clients)
        self.costs.samples += sum(c.processed for c in clients)
        record = RoundRecord(
            round=round_,
            wall_seconds=time.perf_counter() - began,
            sim_seconds=plan.sim_seconds,
            test_accuracy=ev.accuracy,
            test_loss=ev.loss,
            class_accuracy=ev.class_accuracy,
            forgetting=forgetting,
            accuracy_drops=drops,
            train_loss=mean_loss,
            bytes_down=self.costs.bytes_down,
            bytes_up=self.costs.bytes_up,
            samples=self.costs.samples,
            clients_sampled=len(sampled),
            clients_reported=len(clients) - sum(c.rejected for c in clients),
            clients_rejected=sum(c.rejected for c in clients),
            server_step_applied=applied,
            workers_nodes=sorted({f"{c.worker}@{c.node}" for c in clients}),
        )
        return record, clients
