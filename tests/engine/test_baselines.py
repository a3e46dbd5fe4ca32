"""Every baseline of the forgetting study on both engines: same results, a model of its own, exact resume.

Six clients, five a round, four rounds: most clients return, so stateful baselines (FedDyn's g_k,
FedCurv's own Fisher terms, MOON's previous model) read their state back.
"""

from __future__ import annotations

import signal

import numpy as np
import pytest

from fedref_ray.simulation import run_experiment
from tests.conftest import tiny_config
from tests.engine.test_ray_engine import assert_params_close
from tests.lifecycle.test_checkpoint_resume import assert_same_run, cli, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SMALL = ("model.name=mlp", "partition.num_clients=6", "run.rounds=4", "training.lr=0.1")
BASELINES = {
    "fedavgm": ("algorithm.beta=0.9",),
    "fedadagrad": ("algorithm.server_lr=0.03",),
    "feddyn": ("algorithm.alpha=0.1",),
    "fedntd": ("algorithm.beta=1.0",),
    "fedcurv": ("algorithm.lam=1.0",),
    "moon": ("algorithm.mu=1.0",),
}


def overrides(name: str) -> tuple[str, ...]:
    return (*SMALL, f"algorithm.name={name}", *BASELINES[name])


@pytest.fixture(scope="module")
def fedavg(tmp_path_factory):
    """FedAvg's final model on the same data, seed and clients."""
    return run_experiment(tiny_config(tmp_path_factory.mktemp("fedavg"), *SMALL), quiet=True).params


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_both_engines_agree_and_the_model_is_not_fedavgs(tmp_path, ray_session, fedavg, name):
    # Execute
    local = run_experiment(tiny_config(tmp_path / "local", *overrides(name)), quiet=True)
    remote = run_experiment(
        tiny_config(tmp_path / "ray", *overrides(name), "engine.name=ray", "engine.num_workers=2"), quiet=True
    )
    # Assert
    assert_params_close(local.params, remote.params)
    assert max(float(np.max(np.abs(local.params[k] - fedavg[k]))) for k in fedavg) > 1e-4


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_sigkill_after_a_checkpoint_then_resume_is_identical(tmp_path, name):
    # Prepare: an uninterrupted run in a process of its own, like the others (same torch threads)
    common = ["data.name=digits", "run.clients_per_round=5", "training.batch_size=16", "run.checkpoint_every=2"]
    args = [*common, *overrides(name), "run.rounds=6", "engine.name=local"]
    ref = tmp_path / "ref"
    uninterrupted = cli("run", *args, f"run.results_dir={ref}", "--quiet")
    _, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err
    # Execute
    out = tmp_path / "killed"
    proc = cli("run", *args, f"run.results_dir={out}", "--quiet")
    wait_for(out / "checkpoints" / "round-000004" / "meta.json")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    resumed = cli("run", "--resume", str(out), "--quiet")
    _, err = resumed.communicate(timeout=300)
    # Assert
    assert resumed.returncode == 0, err
    assert_same_run(ref, out)
