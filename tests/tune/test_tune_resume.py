"""An interrupted sweep resumes: `fedref-ray tune` joins the test's Ray, gets Ctrl+C after some trials finished,
and `--resume` runs only the trials that had not finished."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fedref_ray.cli import main
from fedref_ray.tune import tune_compat

pytestmark = pytest.mark.ray

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "tune_smoke.yaml"


ROUNDS = {0: 3, 1: 3, 2: 40, 3: 40}  # two short trials, then two long ones that the interrupt catches running


def write_sweep(tmp_path: Path) -> Path:
    """The smoke sweep's base on the in-process engine (fast: the smoke test covers worker actors), two trials
    at a time, simulation checkpoints every round."""
    base = yaml.safe_load(SMOKE.read_text())["base"]
    overrides = {"engine.name": "local", "run.checkpoint_every": 1}
    arms = [{"run.seed": seed, "run.rounds": rounds} for seed, rounds in ROUNDS.items()]
    sweep = {"base": base, "overrides": overrides, "space": {"arm": {"grid": arms}}, "max_concurrent_trials": 2}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def interrupt_after_finished_runs(command: list[str], runs: Path, count: int, timeout_s: float) -> subprocess.Popen:
    """Start the sweep, wait until `count` simulations wrote summary.json (and Tune a moment to see them finish),
    then send SIGINT (Ctrl+C)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    while len(list(runs.glob("*/summary.json"))) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep did not finish two trials in time"
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    return proc


def trial_files(sweep_dir: Path, trial_id: str) -> tuple[str, str]:
    """What a rerun would rewrite: the simulation's summary.json and Tune's result log."""
    (trial_dir,) = (sweep_dir / "tune").glob(f"{trial_id}_*")
    return (sweep_dir / "runs" / trial_id / "summary.json").read_text(), (trial_dir / "result.json").read_text()


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(ray_session, tmp_path):
    # Prepare: the CLI in another process, joined to this test's Ray by address
    sweep_dir = tmp_path / "out"
    address = ray_session.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "fedref_ray.cli", "tune", "--quiet", "--results-dir", str(sweep_dir),
               str(write_sweep(tmp_path)), f"engine.address={address}"]  # fmt: skip
    # Execute: Ctrl+C once two simulations are done
    proc = interrupt_after_finished_runs(command, sweep_dir / "runs", count=2, timeout_s=300)
    _, err = proc.communicate(timeout=120)
    states = tune_compat.load_trials(sweep_dir / "tune")
    finished = sorted(s.trial_id for s in states if s.status == tune_compat.FINISHED)
    before = {t: trial_files(sweep_dir, t) for t in finished}
    partial = {
        s.trial_id: s.rows["wall_seconds"].tolist() for s in states if s.trial_id not in finished and len(s.rows)
    }
    code = main(["tune", "--quiet", "--resume", str(sweep_dir)])
    # Assert: interrupted with a resume hint; finished trials untouched; every trial complete once
    assert proc.returncode == 130 and f"fedref-ray tune --resume {sweep_dir}" in err
    assert 1 <= len(finished) < 4
    assert code == 0
    assert {t: trial_files(sweep_dir, t) for t in finished} == before
    states = tune_compat.load_trials(sweep_dir / "tune")
    assert [s.status for s in states] == [tune_compat.FINISHED] * 4
    table = pd.read_parquet(sweep_dir / "trials.parquet")
    for seed, rows in table.groupby("run.seed"):
        expected = list(range(1, ROUNDS[seed] + 1))
        assert rows["round"].tolist() == expected  # every round reported once, none lost or repeated
        rounds = pd.read_parquet(sweep_dir / "runs" / rows["trial_id"].iloc[0] / "rounds.parquet")
        assert rounds["round"].tolist() == expected
    for trial_id, walls in partial.items():  # interrupted mid-run: continued from its checkpoint, not rerun
        rounds = pd.read_parquet(sweep_dir / "runs" / trial_id / "rounds.parquet")
        kept = walls[:-1]  # the last reported round may not have reached the simulation's checkpoint
        assert rounds["wall_seconds"].tolist()[: len(kept)] == kept
