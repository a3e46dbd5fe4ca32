"""The Ray engine on a real local Ray: same results as the in-process engine, survives a killed worker."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pandas as pd
import pytest
import ray

from fedref_ray.data.prepare import prepare_data
from fedref_ray.engine import create_engine, initial_params
from fedref_ray.simulation import run_experiment
from tests.conftest import tiny_config

pytestmark = pytest.mark.ray

ALGORITHMS = {
    "fedavg": ("algorithm.name=fedavg",),
    "fedprox": ("algorithm.name=fedprox", "algorithm.mu=0.1"),
    "fedopt": ("algorithm.name=fedopt", "algorithm.server_lr=0.01"),
    "fedref": ("algorithm.name=fedref", "algorithm.rho=2", "algorithm.lam=0.5", "algorithm.mu=0.1",
               "algorithm.client_prior=reference"),
    # 8 clients, 5 a round, 4 rounds: clients return, so their control variates c_k are read back
    "scaffold": ("algorithm.name=scaffold", "partition.num_clients=8", "run.rounds=4"),
}  # fmt: skip


def assert_params_close(a, b, rel=1e-5):
    """Every tensor agrees within `rel` of its largest magnitude."""
    for k in a:
        scale = max(float(np.max(np.abs(a[k]))), 1e-12)
        assert float(np.max(np.abs(a[k] - b[k]))) <= rel * scale, k


def sampled_clients(result) -> list[list[int]]:
    clients = pd.read_parquet(result.results_dir / "clients.parquet")
    return [sorted(g["client_id"].tolist()) for _, g in clients.groupby("round")]


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_ray_engine_matches_local_engine(tmp_path, ray_session, algorithm):
    # Prepare
    overrides = ALGORITHMS[algorithm]
    local_cfg = tiny_config(tmp_path / "local", *overrides)
    ray_cfg = tiny_config(tmp_path / "ray", *overrides, "engine.name=ray", "engine.num_workers=2")
    # Execute
    local = run_experiment(local_cfg, quiet=True)
    remote = run_experiment(ray_cfg, quiet=True)
    # Assert
    assert_params_close(local.params, remote.params)
    assert sampled_clients(local) == sampled_clients(remote)
    workers = pd.read_parquet(remote.results_dir / "clients.parquet")["worker"].unique()
    assert set(workers) == {"worker-0", "worker-1"}


@pytest.mark.parametrize(("algorithm", "num_workers"), [("fedavg", 1), ("fedavg", 3), ("scaffold", 3)])
def test_worker_count_does_not_change_results(tmp_path, ray_session, algorithm, num_workers):
    overrides = ALGORITHMS[algorithm]
    local = run_experiment(tiny_config(tmp_path / "local", *overrides), quiet=True)
    remote = run_experiment(
        tiny_config(tmp_path / "ray", *overrides, "engine.name=ray", f"engine.num_workers={num_workers}"), quiet=True
    )
    assert_params_close(local.params, remote.params)
    assert sampled_clients(local) == sampled_clients(remote)


@pytest.mark.parametrize("algorithm", ["fedavg", "scaffold"])
def test_killed_worker_is_restarted_and_the_round_result_is_unchanged(tmp_path, ray_session, algorithm):
    # Prepare: rounds long enough (~seconds) to kill a worker in the middle of one; SCAFFOLD's clients of
    # round 2 that took part in round 1 bring their control variates to the re-run task
    overrides = (
        *(("algorithm.name=scaffold", "partition.num_clients=6") if algorithm == "scaffold" else ()),
        "engine.name=ray",
        "engine.num_workers=2",
        "model.hidden=256",
        "training.local_epochs=30",
        "run.rounds=2",
    )
    reference = run_experiment(tiny_config(tmp_path / "clean", *overrides), quiet=True)
    cfg = tiny_config(tmp_path / "faulty", *overrides)
    arrays, data = prepare_data(cfg)
    start = initial_params(cfg, arrays.input_shape, arrays.num_classes)
    with create_engine(cfg, arrays, data, start) as engine:
        engine.run_round()
        victim = engine.workers[0]
        pid_before = engine.placement[0]["pid"]
        # Execute: start round 2, SIGKILL worker-0's process while the round is running
        pending = engine.server.run_round.remote()
        time.sleep(0.5)
        assert not ray.wait([pending], timeout=0)[0], "the round finished before the kill; make it longer"
        os.kill(pid_before, signal.SIGKILL)
        record, clients = ray.get(pending, timeout=300)
        pid_after = ray.get(victim.ready.remote(), timeout=60)["pid"]
        params = engine.params()
    # Assert: a new process, all clients reported, same model as without the failure
    assert pid_after != pid_before
    assert record.clients_reported == 5
    assert_params_close(reference.params, params)


def test_fractional_gpu_request_falls_back_to_cpu(tmp_path, ray_session):
    # Prepare: the session Ray declares one GPU that this machine does not have
    cfg = tiny_config(tmp_path, "engine.name=ray", "engine.num_workers=2", "engine.gpus_per_worker=0.5", "run.rounds=1")
    arrays, data = prepare_data(cfg)
    start = initial_params(cfg, arrays.input_shape, arrays.num_classes)
    # Execute
    with create_engine(cfg, arrays, data, start) as engine:
        record, _ = engine.run_round()
        devices = [p["device"] for p in engine.placement]
    # Assert
    assert devices == ["cpu", "cpu"]
    assert record.clients_reported == 5


def test_too_few_cpus_is_a_clear_error_not_a_hang(tmp_path, ray_session):
    from fedref_ray.errors import UserError

    cfg = tiny_config(tmp_path, "engine.name=ray", "engine.num_workers=9")
    arrays, data = prepare_data(cfg)
    start = initial_params(cfg, arrays.input_shape, arrays.num_classes)
    with pytest.raises(UserError, match="engine.num_workers=9"):
        create_engine(cfg, arrays, data, start)
