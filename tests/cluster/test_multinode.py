"""The Ray engine on a real 3-node Ray cluster on this machine: spread placement, node-tagged records, a lost node.

Each node is its own raylet and object store (`ray.cluster_utils.Cluster`), with 2 logical CPUs and a
custom resource naming it; the engine joins the cluster through `engine.address`, as a driver on the
head does. Nodes have room for 2 workers each, so any spread over nodes is the placement's doing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
import ray._common.utils
import ray._private.utils
from ray.cluster_utils import Cluster

from fedref_ray.config import ExperimentConfig
from fedref_ray.data.prepare import prepare_data
from fedref_ray.engine import create_engine, initial_params
from fedref_ray.params import Params
from fedref_ray.simulation import run_experiment
from tests.conftest import tiny_config

pytestmark = pytest.mark.ray

NODE_CPUS = 2
WORKER_NODES = ("node_a", "node_b")
# Rounds of a few seconds on 2 cores, so that a node can be lost in the middle of one.
LONG_ROUNDS = ("model.hidden=256", "training.local_epochs=10", "run.rounds=2")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Head plus two worker nodes. The engine joins the cluster as this process's Ray, so a Ray already
    running here (the session's `ray_session`, when other tests ran first) is shut down and restarted after."""
    previous = local_ray_resources() if ray.is_initialized() else None
    ray.shutdown()
    try:
        yield from three_node_cluster()
    finally:
        if previous is not None:
            ray.init(address="local", **previous, include_dashboard=False, log_to_driver=False, configure_logging=False)


def local_ray_resources() -> dict[str, int]:
    """The CPU and GPU counts this process's Ray was started with."""
    total = ray.cluster_resources()
    return {"num_cpus": int(total.get("CPU", 0)), "num_gpus": int(total.get("GPU", 0))}


def three_node_cluster() -> Iterator[Cluster]:
    """Start the 3 nodes, yield the cluster, stop every process of it."""
    with pytest.MonkeyPatch.context() as mp:
        # Keep the cluster from becoming this machine's "current" Ray (/tmp/ray/ray_current_cluster),
        # which a plain ray.init() in any other process would join while this module runs.
        mp.setattr(ray._private.utils, "write_ray_address", lambda *a, **k: None)
        mp.setattr(ray._common.utils, "reset_ray_address", lambda *a, **k: None)
        c = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": NODE_CPUS, "resources": {"node_head": 1}, "include_dashboard": False},
        )
        try:
            for name in WORKER_NODES:
                c.add_node(num_cpus=NODE_CPUS, resources={name: 1})
            c.wait_for_nodes()
            yield c
        finally:
            if ray.is_initialized():
                ray.shutdown()
            c.shutdown()


def ray_config(tmp_path: Path, cluster: Cluster, *overrides: str) -> ExperimentConfig:
    """tiny_config on the Ray engine, joining `cluster` with spread placement."""
    return tiny_config(
        tmp_path, "engine.name=ray", f"engine.address={cluster.address}", "engine.placement=spread", *overrides
    )


def max_abs_diff(a: Params, b: Params) -> float:
    """Largest absolute difference over every tensor of two models."""
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def nodes_of(workers_nodes: list[str]) -> set[str]:
    """Node ids from a RoundRecord's "worker-i@<node id>" entries."""
    return {entry.split("@", 1)[1] for entry in workers_nodes}


# SCAFFOLD with 6 clients, 5 a round: returning clients carry their control variates c_k, which the
# server keeps on its node and ships with each task to whichever node's worker trains the client.
ALGORITHMS = {"fedavg": (), "scaffold": ("algorithm.name=scaffold", "partition.num_clients=6", "run.rounds=4")}


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_spread_runs_workers_on_several_nodes_and_matches_the_single_node_run(tmp_path, cluster, algorithm):
    # Prepare
    extra = ALGORITHMS[algorithm]
    node_ids = {node.node_id for node in cluster.list_all_nodes()}
    single = run_experiment(tiny_config(tmp_path / "local", *extra), quiet=True)
    # Execute
    multi = run_experiment(ray_config(tmp_path / "ray", cluster, "engine.num_workers=3", *extra), quiet=True)
    # Assert: every round names each worker's node; the workers sit on >= 2 nodes; same model
    rounds = pd.read_parquet(multi.results_dir / "rounds.parquet")
    clients = pd.read_parquet(multi.results_dir / "clients.parquet")
    assert len(rounds) == (4 if algorithm == "scaffold" else 3)
    for _, row in rounds.iterrows():
        entries = list(row["workers_nodes"])
        assert {e.split("@", 1)[0] for e in entries} == {"worker-0", "worker-1", "worker-2"}
        assert nodes_of(entries) <= node_ids
        assert len(nodes_of(entries)) >= 2, entries
        in_round = clients[clients["round"] == row["round"]]
        assert {f"{w}@{n}" for w, n in zip(in_round["worker"], in_round["node"], strict=True)} == set(entries)
    assert max_abs_diff(single.params, multi.params) <= 1e-5


def test_losing_a_worker_node_mid_round_reruns_its_clients_elsewhere(tmp_path, cluster):
    # Prepare: the reference without failures, and an engine with a worker on a non-head node
    reference = run_experiment(tiny_config(tmp_path / "local", *LONG_ROUNDS, "engine.torch_threads=1"), quiet=True)
    cfg = ray_config(tmp_path / "ray", cluster, *LONG_ROUNDS, "engine.num_workers=2")
    arrays, data = prepare_data(cfg)
    start = initial_params(cfg, arrays.input_shape, arrays.num_classes)
    with create_engine(cfg, arrays, data, start) as engine:
        first, _ = engine.run_round()
        used = nodes_of(first.workers_nodes)
        victim = next(node for node in cluster.worker_nodes if node.node_id in used)
        # Execute: start round 2, then kill every process of the victim node (no graceful shutdown)
        pending = engine.server.run_round.remote()
        time.sleep(min(0.5, first.wall_seconds / 4))  # round 1 took seconds; be well inside round 2
        assert not ray.wait([pending], timeout=0)[0], "round 2 finished before the node was lost; make it longer"
        cluster.remove_node(victim, allow_graceful=False)
        second, clients = ray.get(pending, timeout=300)
        placement = [ray.get(w.ready.remote(), timeout=60) for w in engine.workers]
        params = engine.params()
        alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    # Assert: the victim is gone, its worker restarted on a surviving node, every client reported, same model
    assert victim.node_id not in alive
    assert all(p["node"] in alive for p in placement)
    assert victim.node_id not in {c.node for c in clients}, "the lost node's clients were not re-run elsewhere"
    assert second.clients_reported == len(clients) == 5
    assert max_abs_diff(reference.params, params) <= 1e-5
