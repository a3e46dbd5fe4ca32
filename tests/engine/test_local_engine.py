"""The in-process engine defines the semantics: determinism, algorithm identities, system heterogeneity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from fedref_ray.results import load_model_npz
from fedref_ray.simulation import run_experiment
from tests.conftest import tiny_config

TIMING_COLUMNS = ["wall_seconds", "workers_nodes"]


def run(tmp_path, name: str, *overrides: str):
    cfg = tiny_config(tmp_path / name, *overrides)
    return run_experiment(cfg, quiet=True)


def test_same_seed_gives_identical_rounds_and_model(tmp_path):
    # Prepare / Execute
    a = run(tmp_path, "a", "algorithm.name=fedref", "algorithm.rho=1", "algorithm.mu=0.1")
    b = run(tmp_path, "b", "algorithm.name=fedref", "algorithm.rho=1", "algorithm.mu=0.1")
    # Assert: every column but the wall clock is identical, and so is the final model
    ra = pd.read_parquet(a.results_dir / "rounds.parquet").drop(columns=TIMING_COLUMNS)
    rb = pd.read_parquet(b.results_dir / "rounds.parquet").drop(columns=TIMING_COLUMNS)
    pd.testing.assert_frame_equal(ra, rb)
    ma, mb = load_model_npz(a.results_dir / "model.npz"), load_model_npz(b.results_dir / "model.npz")
    assert all(np.array_equal(ma[k], mb[k]) for k in ma)
    assert len(ra) == 3 and ra["round"].tolist() == [1, 2, 3]


def test_different_seed_changes_the_run(tmp_path):
    a = run(tmp_path, "a")
    b = run(tmp_path, "b", "run.seed=1")
    assert any(not np.array_equal(a.params[k], b.params[k]) for k in a.params)


@pytest.mark.parametrize(
    "overrides",
    [
        ("algorithm.name=fedprox", "algorithm.mu=0"),
        ("algorithm.name=fedref", "algorithm.lam=0", "algorithm.mu=0", "algorithm.rho=1"),
        ("algorithm.name=fedref", "algorithm.lam=0", "algorithm.mu=0", "algorithm.client_prior=reference"),
    ],
)
def test_degenerate_coefficients_reproduce_fedavg_exactly(tmp_path, overrides):
    fedavg = run(tmp_path, "fedavg", "algorithm.name=fedavg")
    other = run(tmp_path, "other", *overrides)
    for k in fedavg.params:
        np.testing.assert_array_equal(fedavg.params[k], other.params[k])


def test_fedref_fine_tuning_changes_the_model_after_warm_up(tmp_path):
    fedavg = run(tmp_path, "fedavg", "run.rounds=3")
    fedref = run(tmp_path, "fedref", "algorithm.name=fedref", "algorithm.rho=2", "algorithm.lam=1.0", "run.rounds=3")
    rounds = pd.read_parquet(fedref.results_dir / "rounds.parquet")
    assert rounds["server_step_applied"].tolist() == [False, False, True]
    assert any(not np.array_equal(fedavg.params[k], fedref.params[k]) for k in fedavg.params)


def test_reference_client_prior_pays_two_downloads(tmp_path):
    glob = run(tmp_path, "g", "algorithm.name=fedref", "algorithm.mu=0.01")
    ref = run(tmp_path, "r", "algorithm.name=fedref", "algorithm.mu=0.01", "algorithm.client_prior=reference")
    g = pd.read_parquet(glob.results_dir / "rounds.parquet")
    r = pd.read_parquet(ref.results_dir / "rounds.parquet")
    assert (r["bytes_down"] == 2 * g["bytes_down"]).all()
    assert (r["bytes_up"] == g["bytes_up"]).all()


def test_rounds_parquet_columns_and_costs(tmp_path):
    result = run(tmp_path, "a")
    rounds = pd.read_parquet(result.results_dir / "rounds.parquet")
    clients = pd.read_parquet(result.results_dir / "clients.parquet")
    model_bytes = sum(v.size for v in result.params.values()) * 4
    assert (rounds["clients_reported"] == 5).all()
    assert rounds["bytes_down"].tolist() == [5 * model_bytes * r for r in (1, 2, 3)]
    assert rounds["samples"].iloc[-1] == clients["processed"].sum()
    assert len(rounds["class_accuracy"].iloc[0]) == 10
    assert (rounds["forgetting"] >= 0).all()
    assert sorted(clients["round"].unique()) == [1, 2, 3] and len(clients) == 15
    for name in ("config.yaml", "summary.json", "model.npz"):
        assert (result.results_dir / name).is_file()


def test_unavailable_and_late_clients_do_not_report(tmp_path):
    avail = run(tmp_path, "a", "system.availability=0.4")
    late = run(tmp_path, "d", "system.deadline_s=0.05", "system.speed_median=100", "system.speed_sigma=1.0")
    ra = pd.read_parquet(avail.results_dir / "rounds.parquet")
    rd = pd.read_parquet(late.results_dir / "rounds.parquet")
    assert ra["clients_reported"].sum() < 15
    assert rd["clients_reported"].sum() < 15
    assert (rd["sim_seconds"] <= 0.05 + 1e-9).all()


def test_partial_work_processes_fewer_samples_than_full_work(tmp_path):
    full = run(tmp_path, "f", "system.speed_median=100")
    part = run(tmp_path, "p", "system.speed_median=100", "system.deadline_s=0.3", "system.deadline_policy=partial")
    rf = pd.read_parquet(full.results_dir / "rounds.parquet")
    rp = pd.read_parquet(part.results_dir / "rounds.parquet")
    assert rp["samples"].iloc[-1] < rf["samples"].iloc[-1]
    assert rp["clients_reported"].sum() > 0


def test_noise_faults_hurt_and_stale_faults_pull_back_to_the_initial_model(tmp_path):
    clean = run(tmp_path, "c")
    noisy = run(tmp_path, "n", "system.faulty_fraction=1.0", "system.fault_kind=noise", "system.fault_noise_std=1.0")
    stale = run(tmp_path, "s", "system.faulty_fraction=1.0", "system.fault_kind=stale")
    cfg = tiny_config(tmp_path / "x")
    from fedref_ray.data.prepare import prepare_data
    from fedref_ray.engine import initial_params

    arrays, _ = prepare_data(cfg)
    theta0 = initial_params(dataclasses.replace(cfg), arrays.input_shape, arrays.num_classes)
    assert all(np.array_equal(stale.params[k], theta0[k]) for k in theta0)  # every update replaced by theta_0
    loss = {
        r: pd.read_parquet(x.results_dir / "rounds.parquet")["test_loss"].iloc[-1]
        for r, x in [("c", clean), ("n", noisy)]
    }
    assert loss["n"] > 2 * loss["c"]  # noise-corrupted updates wreck the global model
