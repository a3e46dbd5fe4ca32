"""The Ray engine: a pool of long-lived client-worker actors and a server actor.

The federated dataset goes into the object store once (workers read it
zero-copy); each round the server actor puts the global model (and the
reference, when clients need it) into the store once, as numpy, and every
worker returns one partial sum for all the clients it trained. Every Ray call
that depends on this Ray version lives in `ray_compat`.
"""

from __future__ import annotations

import os
import uuid

import ray

from fedref_ray.aggregation import ClientRecord
from fedref_ray.checkpoint import ServerSnapshot
from fedref_ray.client_worker import ClientWorker, select_device
from fedref_ray.config import EngineConfig, ExperimentConfig
from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.federated import FederatedData
from fedref_ray.engine import ray_compat, shared_inputs
from fedref_ray.engine.base import Engine, client_state_dir
from fedref_ray.engine.ray_pool import RayPool
from fedref_ray.imports import user_code_env
from fedref_ray.metrics import RoundRecord
from fedref_ray.params import Params
from fedref_ray.server import Server


def torch_threads(cfg: EngineConfig) -> int:
    """Threads per worker: the configured number, else the worker's whole-CPU share (at least 1)."""
    return cfg.torch_threads or max(1, int(cfg.cpus_per_worker))


class RayClientWorker(ClientWorker):
    """A ClientWorker inside an actor: pins its torch threads, hides GPUs it did not ask for, reports its node."""

    def __init__(
        self, cfg: ExperimentConfig, inputs: str, input_shape: tuple[int, ...], num_classes: int, name: str
    ) -> None:
        """`inputs` names the SharedInputs actor holding (federated data, initial model, test set)."""
        import torch

        if cfg.engine.gpus_per_worker == 0:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # unset means "all GPUs" to CUDA: hide them explicitly
        torch.set_num_threads(torch_threads(cfg.engine))
        data, start, test = shared_inputs.fetch(inputs, cfg.engine.timeout_s)
        device = select_device(cfg.engine.gpus_per_worker)
        super().__init__(cfg, data, input_shape, num_classes, start, test, name=name, device=device)
        self.warm_up()

    def node(self) -> str:
        return ray_compat.current_node_id()

    def ready(self) -> dict[str, object]:
        """Where the actor runs (node id, device, pid): answered once it is placed and built."""
        return {"name": self.name, "node": self.node(), "device": self.device, "pid": os.getpid()}


class RayEngine(Engine):
    """Starts (or joins) Ray, the worker pool and the server actor; the driver only streams records."""

    def __init__(self, cfg: ExperimentConfig, arrays: DatasetArrays, data: FederatedData, start: Params) -> None:
        super().__init__(cfg, arrays, data, start)
        ec = cfg.engine
        # the user's own modules travel to every worker (a Ray started elsewhere needs them in its runtime_env)
        self.owns_ray = ray_compat.connect(ec, user_code_env((cfg.model.name, cfg.data.name, cfg.algorithm.name)))
        self.actors: list = []
        try:
            ray_compat.check_resources(ec)
            data_ref, start_ref, test_ref = ray.put(data), ray.put(start), ray.put((arrays.x_test, arrays.y_test))
            inputs = f"fedref-inputs-{uuid.uuid4().hex}"  # restarted workers fetch the refs again from this actor
            holder = ray.remote(shared_inputs.SharedInputs).options(name=inputs, **ray_compat.server_options(ec))
            self.actors.append(holder.remote([data_ref, start_ref, test_ref]))
            worker_cls = ray.remote(RayClientWorker)
            names = [f"worker-{i}" for i in range(ec.num_workers)]
            workers = [
                worker_cls.options(**ray_compat.worker_options(ec)).remote(
                    cfg, inputs, arrays.input_shape, arrays.num_classes, name
                )
                for name in names
            ]
            self.workers = workers
            self.actors.extend(workers)
            server_cls = ray.remote(Server)
            self.server = server_cls.options(**ray_compat.server_options(ec)).remote(
                cfg,
                start_ref,
                data.sizes,
                RayPool(workers, names, len(arrays.y_test), ec.timeout_s),
                client_state_dir(cfg),
            )
            self.actors.append(self.server)
            # every actor starts (and imports torch) at once; wait for all of them before round 1
            calls = [w.ready.remote() for w in workers] + [self.server.round_number.remote()]
            self.placement = ray_compat.get_all(calls, [*names, "server"], ec.timeout_s, what="actor start")[:-1]
        except BaseException:
            self.close()
            raise

    def run_round(self) -> tuple[RoundRecord, list[ClientRecord]]:
        return ray_compat.get_one(self.server.run_round.remote(), "server", self.cfg.engine.timeout_s)

    def params(self) -> Params:
        return ray_compat.get_one(self.server.params.remote(), "server", self.cfg.engine.timeout_s)

    def snapshot(self) -> ServerSnapshot:
        return ray_compat.get_one(self.server.snapshot.remote(), "server", self.cfg.engine.timeout_s)

    def restore(self, snapshot: ServerSnapshot) -> None:
        ray_compat.get_one(self.server.restore.remote(snapshot), "server", self.cfg.engine.timeout_s)

    def close(self) -> None:
        for actor in self.actors:
            ray_compat.kill_quietly(actor)
        self.actors = []
        if self.owns_ray and ray.is_initialized():
            ray.shutdown()
        self.owns_ray = False
