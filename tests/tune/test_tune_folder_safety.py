"""A sweep's folder: locked for the whole sweep, and its tables never name the user's home folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fedref_ray.cli import main
from fedref_ray.locking import folder_lock

REPO = Path(__file__).resolve().parents[2]
TINY_SWEEP = """\
base:
  data: {name: digits}
  partition: {name: iid, num_clients: 10}
  model: {name: logreg}
  engine: {name: local}
  run: {rounds: 1, clients_per_round: 3}
space:
  run.seed: grid [0, 1]
scheduler: {name: fifo, metric: test_accuracy, mode: max}
trial_cpus: 1
ray_num_cpus: 2
"""


@pytest.fixture(scope="module")
def home_sweep(tmp_path_factory) -> Path:
    """A finished tiny sweep run by the CLI in its own process, with HOME pointing at a folder holding it."""
    home = tmp_path_factory.mktemp("sweep") / "home"
    home.mkdir()
    (home / "sweep.yaml").write_text(TINY_SWEEP)
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "disabled"}
    argv = [sys.executable, "-m", "fedref_ray.cli", "tune", str(home / "sweep.yaml"), "--quiet"]
    done = subprocess.run([*argv, "--results-dir", str(home / "sweep")], cwd=REPO, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return home


@pytest.mark.ray
def test_sweep_tables_write_the_home_folder_as_tilde(home_sweep):
    # Prepare
    sweep = home_sweep / "sweep"
    # Assert: no output table names the home path; the paths they give still lead to the trials' results
    for name in ("best.json", "trials.parquet"):
        assert str(home_sweep).encode() not in (sweep / name).read_bytes(), name
    table = pd.read_parquet(sweep / "trials.parquet")
    assert len(table) == 2 and all(d.startswith("~/sweep/runs/") for d in table["results_dir"])
    best = json.loads((sweep / "best.json").read_text())
    assert best["results_dir"].startswith("~/sweep/runs/") and best["summary"]["rounds"] == 1


@pytest.mark.ray
def test_resuming_a_sweep_another_process_holds_is_refused_naming_it(capsys, home_sweep):
    # Prepare: the finished sweep's folder held (a real flock, by this test process)
    sweep = home_sweep / "sweep"
    before = sorted(p.name for p in sweep.iterdir())
    with folder_lock(sweep, field="--resume"):
        # Execute
        code = main(["tune", "--resume", str(sweep)])
    # Assert
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert f"is in use by process {os.getpid()}" in lines[0] and "--resume" in lines[0]
    assert sorted(p.name for p in sweep.iterdir()) == before


def test_a_sweep_on_a_folder_another_process_holds_is_refused_naming_it(capsys, tmp_path):
    # Prepare: the sweep folder held (a real flock, by this test process)
    (tmp_path / "sweep.yaml").write_text(TINY_SWEEP)
    sweep = tmp_path / "sweep"
    with folder_lock(sweep):
        # Execute
        code = main(["tune", str(tmp_path / "sweep.yaml"), "--results-dir", str(sweep), "--quiet"])
        held = sorted(p.name for p in sweep.iterdir())
    # Assert: refused before Ray starts, with one line naming the holder; nothing was written into the folder
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert f"is in use by process {os.getpid()}" in lines[0] and "--results-dir" in lines[0]
    assert held == [".lock"]
    assert not sweep.exists()  # the holder created it, and removed it empty
