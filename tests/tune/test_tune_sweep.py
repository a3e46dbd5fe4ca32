"""tune_smoke.yaml on a real local Ray: 8 trials of 2 worker actors each, concurrent, one row per trial per round."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fedref_ray.cli import main
from fedref_ray.errors import UserError
from fedref_ray.tune.runner import run_sweep
from fedref_ray.tune.space import load_sweep

pytestmark = pytest.mark.ray

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "tune_smoke.yaml"
PARAMS = ["algorithm.name", "partition.alpha", "run.seed", "algorithm.mu", "algorithm.lam"]


@pytest.fixture(scope="module")
def smoke(ray_session, tmp_path_factory):
    """The smoke sweep, run once on the session's Ray (4 logical CPUs: three 1.25-CPU trials at a time)."""
    sweep_dir = tmp_path_factory.mktemp("smoke") / "sweep"
    outcome = run_sweep(load_sweep(SMOKE), sweep_dir, quiet=True)
    return outcome, pd.read_parquet(sweep_dir / "trials.parquet")


def test_every_trial_finishes_with_a_row_per_round_and_its_parameters(smoke):
    # Prepare
    outcome, table = smoke
    # Assert
    assert (outcome.trials, outcome.finished, outcome.failed, outcome.unfinished) == (8, 8, 0, 0)
    assert len(table) == 8 * 3
    assert table.groupby("trial_id")["round"].apply(sorted).tolist() == [[1, 2, 3]] * 8
    points = table.drop_duplicates("trial_id")
    assert sorted(points.groupby(["algorithm.name", "partition.alpha", "run.seed"]).size()) == [1] * 8
    fedref = points[points["algorithm.name"] == "fedref"]
    assert fedref["algorithm.mu"].between(0.001, 0.1).all() and fedref["algorithm.mu"].nunique() == 4
    assert set(fedref["algorithm.lam"]) <= {0.1, 0.5}
    # FedAvg takes neither mu nor lam: its trials leave them out, and the table says so with nulls
    assert points.loc[points["algorithm.name"] == "fedavg", ["algorithm.mu", "algorithm.lam"]].isna().all().all()
    assert table[[*PARAMS[:3], "test_accuracy", "test_loss", "forgetting", "bytes_total"]].notna().all().all()


def test_more_than_one_trial_ran_at_the_same_time(smoke):
    # Prepare: each trial's span, from its start to its last report
    _, table = smoke
    spans = table.groupby("trial_id").agg(start=("started_at", "min"), end=("reported_at", "max"))
    # Execute
    overlapping = [
        (a, b)
        for a in spans.index
        for b in spans.index
        if a < b and spans.at[a, "start"] < spans.at[b, "end"] and spans.at[b, "start"] < spans.at[a, "end"]
    ]
    # Assert
    assert overlapping


def test_each_trial_trained_on_two_worker_actors(smoke):
    outcome, table = smoke
    for results_dir in table["results_dir"].unique():
        clients = pd.read_parquet(Path(results_dir) / "clients.parquet")
        assert set(clients["worker"]) == {"worker-0", "worker-1"}
        assert Path(results_dir).parent == outcome.sweep_dir / "runs"


def test_best_json_names_the_best_final_accuracy(smoke):
    outcome, table = smoke
    best = json.loads((outcome.sweep_dir / "best.json").read_text())
    finals = table[table["round"] == 3].set_index("trial_id")["test_accuracy"]
    assert best["trial_id"] == finals.idxmax() and best["value"] == pytest.approx(finals.max())
    assert best["summary"]["final_accuracy"] == pytest.approx(finals.max())
    assert set(best["params"]) == set(PARAMS)


def test_tune_keeps_tensorboard_logs_per_trial(smoke):
    outcome, table = smoke
    for trial_id in table["trial_id"].unique():
        (trial_dir,) = (outcome.sweep_dir / "tune").glob(f"{trial_id}_*")
        assert list(trial_dir.glob("events.out.tfevents.*"))


def test_report_draws_the_sweep(smoke, capsys):
    outcome, _ = smoke
    assert main(["report", str(outcome.sweep_dir)]) == 0
    report = (outcome.sweep_dir / "report" / "report.md").read_text()
    # mu is drawn per FedRef trial: each is its own group; FedAvg's 4 trials group by alpha over seeds
    assert report.count("\n| fed") == 6
    assert (outcome.sweep_dir / "report" / "vs_alpha.png").is_file()


def test_cluster_smaller_than_one_trial_fails_up_front(ray_session, tmp_path):
    # Prepare: 0.25 + 9 x 0.5 CPU per trial on a 4-CPU Ray
    spec = load_sweep(SMOKE, ["engine.num_workers=9"])
    assert spec.trial_cpus == 0.25
    # Execute
    with pytest.raises(UserError) as caught:
        run_sweep(spec, tmp_path / "sweep", quiet=True)
    # Assert
    assert "engine.num_workers=9" in str(caught.value) and "needs 4.75 CPU" in str(caught.value)
    assert not (tmp_path / "sweep" / "tune").exists()
