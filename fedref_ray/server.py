"""The server: owns the global model and the algorithm's state, runs one round at a time.

Plain Python (no Ray). It samples clients, plans the round, hands the tasks to a
client pool, runs the algorithm's server half and evaluates; the Ray engine runs
this same class inside an actor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

import numpy as np

from fedref_ray.aggregation import ClientRecord, PartialSum, merge
from fedref_ray.algorithms import Aggregate, build_algorithm
from fedref_ray.checkpoint import ServerSnapshot
from fedref_ray.client_state import ClientStateStore
from fedref_ray.config import ExperimentConfig
from fedref_ray.metrics import CostCounter, Evaluation, ForgettingTracker, RoundRecord
from fedref_ray.params import Params, num_bytes
from fedref_ray.seeding import sample_clients
from fedref_ray.system import ClientProfiles, ClientTask, RoundWork, plan_round


class ClientPool(Protocol):
    """Whatever trains the round's clients: one in-process worker, or a pool of Ray actors."""

    def train(
        self,
        work: RoundWork,
        start: Params,
        broadcast: dict[str, Params],
        tasks: list[ClientTask],
        states: dict[int, dict[str, np.ndarray]],
    ) -> list[PartialSum]:
        """Train `tasks` from `start` with the algorithm's broadcast tensors and the clients' states."""
        ...

    def evaluate(self, params: Params) -> Evaluation: ...


class Server:
    """Round loop state: global model, the algorithm's state, client states, costs and forgetting so far.

    `state_dir` holds the per-client state files of algorithms that keep client state.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        initial_params: Params,
        client_sizes: np.ndarray,
        pool: ClientPool,
        state_dir: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.algorithm = build_algorithm(cfg.algorithm)
        self.round = 0
        self.model: Params = initial_params
        self.state = self.algorithm.init_state(initial_params)
        self.client_sizes = np.asarray(client_sizes)
        self.pool = pool
        self.profiles = ClientProfiles.draw(cfg.system, len(self.client_sizes), cfg.run.seed)
        self.forgetting = ForgettingTracker()
        self.costs = CostCounter()
        self.model_bytes = num_bytes(initial_params)
        self.client_states: ClientStateStore | None = None
        if self.algorithm.client_state:
            if state_dir is None:
                raise ValueError(f"algorithm {self.algorithm.name} keeps client state: the server needs a state_dir")
            size = sum(int(np.size(v)) for v in initial_params.values())
            self.client_states = ClientStateStore(
                Path(state_dir), self.algorithm.client_state, size, len(self.client_sizes)
            )

    def params(self) -> Params:
        return self.model

    def round_number(self) -> int:
        """Rounds completed so far."""
        return self.round

    def snapshot(self) -> ServerSnapshot:
        """The state a checkpoint needs to continue this run exactly."""
        f, c = self.forgetting, self.costs
        best = None if f.best is None else f.best.tolist()
        states = None if self.client_states is None else self.client_states.snapshot()
        return ServerSnapshot(
            self.round, self.model, self.state, states, best, f.last_accuracy, f.drops, c.bytes_down, c.bytes_up,
            c.samples,
        )  # fmt: skip

    def restore(self, snap: ServerSnapshot) -> None:
        """Continue from a checkpoint (the inverse of `snapshot`)."""
        self.round, self.model, self.state = snap.round, snap.params, snap.algorithm_state
        if self.client_states is not None:
            assert snap.client_state is not None, "a checkpoint of a stateful algorithm carries client state"
            self.client_states.restore(snap.client_state)
        best = None if snap.best_class_accuracy is None else np.asarray(snap.best_class_accuracy, dtype=float)
        self.forgetting = ForgettingTracker(best=best, last_accuracy=snap.last_accuracy, drops=snap.accuracy_drops)
        self.costs = CostCounter(bytes_down=snap.bytes_down, bytes_up=snap.bytes_up, samples=snap.samples)

    def traffic(self, broadcast: dict[str, Params]) -> tuple[int, int]:
        """Bytes one client downloads (the model and every broadcast tensor) and uploads (every upload)."""
        down = self.model_bytes + sum(num_bytes(t) for t in broadcast.values())
        up = self.model_bytes * (1 + len(self.algorithm.upload_tensors)) + 4 * len(self.algorithm.upload_scalars)
        return down, up

    def run_round(self) -> tuple[RoundRecord, list[ClientRecord]]:
        """Run round `self.round + 1` end to end and return its record and per-client rows."""
        began = time.perf_counter()
        cfg, round_ = self.cfg, self.round + 1
        broadcast = self.algorithm.broadcast(self.model, self.state)
        down, up = self.traffic(broadcast)
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
        tasks = list(plan.tasks)
        states = self.client_states.get(t.client_id for t in tasks) if self.client_states is not None else {}
        partials = self.pool.train(RoundWork(round_, down, up), self.model, broadcast, tasks, states) if tasks else []
        merged = merge(partials, self.model, self.algorithm.upload_weightings())
        clients = merged.records
        applied = False  # and when nobody reported, the global model and the algorithm's state stay
        if merged.model is not None:
            aggregate = Aggregate(
                round=round_,
                model=merged.model,
                tensors=merged.tensors,
                scalars=merged.scalars,
                mean_loss=merged.mean_loss,
                num_clients=merged.num_clients,
                total_clients=len(self.client_sizes),
            )
            update = self.algorithm.server_update(self.model, self.state, aggregate)
            self.model, self.state, applied = update.model, update.state, update.step_applied
        if self.client_states is not None:
            self.client_states.put(round_, merged.states)
        self.round = round_
        ev = self.pool.evaluate(self.model)
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
            train_loss=merged.mean_loss,
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
