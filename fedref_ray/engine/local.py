"""The in-process engine: one worker trains every client serially, in this process.

It defines the semantics every other engine must reproduce.
"""

from __future__ import annotations

import numpy as np
import torch

from fedref_ray.aggregation import ClientRecord, PartialSum
from fedref_ray.checkpoint import ServerSnapshot
from fedref_ray.client_worker import ClientWorker
from fedref_ray.config import ExperimentConfig
from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.federated import FederatedData
from fedref_ray.engine.base import Engine, client_state_dir
from fedref_ray.metrics import Evaluation, RoundRecord, summarize
from fedref_ray.params import Params
from fedref_ray.server import Server
from fedref_ray.system import ClientTask, RoundWork


class LocalPool:
    """A client pool of one in-process worker."""

    def __init__(self, worker: ClientWorker) -> None:
        self.worker = worker

    def train(
        self,
        work: RoundWork,
        start: Params,
        broadcast: dict[str, Params],
        tasks: list[ClientTask],
        states: dict[int, dict[str, np.ndarray]],
    ) -> list[PartialSum]:
        return [self.worker.train(work, start, broadcast, tasks, states)]

    def evaluate(self, params: Params) -> Evaluation:
        return summarize([self.worker.evaluate(params, 0, len(self.worker.y_test))])


class LocalEngine(Engine):
    """Server and worker in this process."""

    def __init__(self, cfg: ExperimentConfig, arrays: DatasetArrays, data: FederatedData, start: Params) -> None:
        super().__init__(cfg, arrays, data, start)
        self.previous_threads = torch.get_num_threads()
        if cfg.engine.torch_threads is not None:
            torch.set_num_threads(cfg.engine.torch_threads)
        worker = ClientWorker(cfg, data, arrays.input_shape, arrays.num_classes, start, (arrays.x_test, arrays.y_test))
        self.server = Server(cfg, start, data.sizes, LocalPool(worker), client_state_dir(cfg))

    def run_round(self) -> tuple[RoundRecord, list[ClientRecord]]:
        return self.server.run_round()

    def params(self) -> Params:
        return self.server.params()

    def close(self) -> None:
        torch.set_num_threads(self.previous_threads)  # engine.torch_threads applies to this run only

    def snapshot(self) -> ServerSnapshot:
        return self.server.snapshot()

    def restore(self, snapshot: ServerSnapshot) -> None:
        self.server.restore(snapshot)
