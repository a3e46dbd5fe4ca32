"""ASHA stops a clearly bad trial early: one diverging learning rate among good ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from fedref_ray.tune.runner import run_sweep
from fedref_ray.tune.space import load_sweep

pytestmark = pytest.mark.ray

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "tune_smoke.yaml"
ROUNDS = 4


def test_asha_stops_the_diverging_learning_rate_before_the_last_round(ray_session, tmp_path):
    # Prepare: good learning rates first, lr=50 last (it diverges: accuracy ~0.1 against ~0.3 after round 1).
    # Two trials at a time, so the bad one reaches each rung after good ones have recorded there.
    base = yaml.safe_load(SMOKE.read_text())["base"]
    sweep = {
        "base": base,
        "overrides": {"run.rounds": ROUNDS, "run.clients_per_round": 10, "partition.alpha": 1.0,
                      "training.local_epochs": 5, "engine.name": "local"},
        "space": {"training.lr": "grid [0.3, 0.2, 0.25, 50.0]"},
        "scheduler": {"name": "asha", "metric": "test_accuracy", "mode": "max", "grace_period": 1,
                      "reduction_factor": 2},
        "max_concurrent_trials": 2,
    }  # fmt: skip
    path = tmp_path / "asha.yaml"
    path.write_text(yaml.safe_dump(sweep))
    # Execute
    outcome = run_sweep(load_sweep(path), tmp_path / "sweep", quiet=True)
    # Assert
    table = pd.read_parquet(tmp_path / "sweep" / "trials.parquet")
    last = table.sort_values("round").groupby("training.lr").tail(1).set_index("training.lr")
    assert outcome.finished == 4 and outcome.failed == 0
    assert last.at[50.0, "round"] < ROUNDS and bool(last.at[50.0, "stopped_early"])
    assert (last["round"] == ROUNDS).any()
    assert not bool(last.loc[last["round"] == ROUNDS, "stopped_early"].any())
