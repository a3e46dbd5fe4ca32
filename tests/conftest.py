"""Shared fixtures: one real local Ray for the whole session, and small fast configs."""

from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # explicit, so drivers and `ray start` nodes agree

import pytest  # noqa: E402

from fedref_ray.config import ExperimentConfig, load_config  # noqa: E402


def tiny_config(tmp_path, *overrides: str) -> ExperimentConfig:
    """Digits (8x8, embedded), a small CNN, 20 clients, 5 per round, 3 rounds; overrides win."""
    base = [
        "data.name=digits",
        "model.name=femnist_cnn",
        "model.hidden=32",
        "partition.name=dirichlet",
        "partition.num_clients=20",
        "partition.alpha=0.5",
        "run.clients_per_round=5",
        "run.rounds=3",
        "training.batch_size=16",
        "training.lr=0.05",
        "engine.name=local",
        "engine.timeout_s=120",
        f"run.results_dir={tmp_path / 'run'}",
    ]
    return load_config(None, [*base, *overrides])


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray with 4 logical CPUs and one declared (absent) GPU, shared by every Ray test.

    address="local": always a private Ray, even when `ray start` left a cluster running on this machine
    (a plain ray.init() would join it, and then fail on num_cpus).
    """
    import ray

    ray.init(
        address="local", num_cpus=4, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    yield ray
    ray.shutdown()
