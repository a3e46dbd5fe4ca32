"""Checkpoints, resume, interruption and bad files (in-process engine; the Ray engine in test_resume_ray.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedref_ray.cli import main
from fedref_ray.results import load_model_npz
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parents[2]
BASE = [
    "data.name=digits", "model.name=femnist_cnn", "model.hidden=32", "partition.num_clients=20",
    "run.clients_per_round=5", "training.batch_size=16", "algorithm.name=fedref", "algorithm.rho=2",
    "algorithm.mu=0.01", "run.checkpoint_every=2",
]  # fmt: skip


def snapshot_tree(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `folder`."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def cli(*argv: str, env_extra: dict | None = None, **kw) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "fedref_ray.cli", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


def assert_same_run(a: Path, b: Path) -> None:
    placement = ["wall_seconds", "workers_nodes"]  # where and how fast, not what was computed
    ra = pd.read_parquet(a / "rounds.parquet").drop(columns=placement)
    rb = pd.read_parquet(b / "rounds.parquet").drop(columns=placement)
    pd.testing.assert_frame_equal(ra, rb)
    ma, mb = load_model_npz(a / "model.npz"), load_model_npz(b / "model.npz")
    for k in ma:
        np.testing.assert_array_equal(ma[k], mb[k])


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_sigkill_after_a_checkpoint_then_resume_equals_an_uninterrupted_run(tmp_path, engine):
    # Prepare: an uninterrupted reference run
    rounds = ["run.rounds=6", f"engine.name={engine}", "engine.num_workers=2"]
    ref = tmp_path / "ref"  # a separate process like the others: same torch threads, so bit-identical floats
    uninterrupted = cli("run", *BASE, *rounds, f"run.results_dir={ref}", "--quiet")
    _, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err
    # Execute: the same run, SIGKILLed once its round-4 checkpoint exists, then resumed
    out = tmp_path / "killed"
    proc = cli("run", *BASE, *rounds, f"run.results_dir={out}", "--quiet", "training.local_epochs=1")
    wait_for(out / "checkpoints" / "round-000004" / "meta.json")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (out / "summary.json").exists()
    resumed = cli("run", "--resume", str(out), "--quiet")
    _, err = resumed.communicate(timeout=300)
    # Assert
    assert resumed.returncode == 0, err
    assert_same_run(ref, out)


def test_sigint_writes_checkpoint_and_partial_results_and_resume_completes(tmp_path):
    # Prepare
    out = tmp_path / "run"
    proc = cli(
        "run", *BASE, "run.rounds=40", "engine.name=ray", "run.checkpoint_every=0", f"run.results_dir={out}", "--quiet"
    )
    wait_for(out / "rounds.parquet")
    # Execute
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    # Assert: non-zero, a checkpoint and the results so far, a resume hint, no Ray left behind
    assert proc.returncode == 128 + signal.SIGINT
    assert "--resume" in err
    checkpoints = sorted((out / "checkpoints").iterdir())
    assert len(checkpoints) == 1
    done = int(checkpoints[0].name.split("-")[1])
    assert len(pd.read_parquet(out / "rounds.parquet")) == done < 40
    leftover = subprocess.run(["pgrep", "-f", f"session_.*{proc.pid}|raylet.*{out}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
    assert not ray_processes_of(proc.pid)
    resumed = cli("run", "--resume", str(out), "--quiet", "engine.name=local")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert len(pd.read_parquet(out / "rounds.parquet")) == 40


def ray_processes_of(driver_pid: int) -> list[str]:
    """Ray daemons (raylet, gcs_server) still running whose parent chain started at `driver_pid`."""
    ps = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout.splitlines()[1:]
    rows = [line.split(None, 2) for line in ps]
    parent = {int(r[0]): int(r[1]) for r in rows}
    out = []
    for pid, _, args in rows:
        p = int(pid)
        while p in parent and p != driver_pid and p > 1:
            p = parent[p]
        if p == driver_pid and ("raylet" in args or "gcs_server" in args or "ray::" in args):
            out.append(args)
    return out


@pytest.fixture
def finished_run(tmp_path):
    out = tmp_path / "run"
    assert main(["run", *BASE, "run.rounds=2", "engine.name=local", f"run.results_dir={out}", "--quiet"]) == 0
    return out


def _resume_fails(capsys, out: Path, *extra: str) -> str:
    before = snapshot_tree(out)
    code = main(["run", "--resume", str(out), "--quiet", "engine.name=local", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert snapshot_tree(out) == before  # byte-for-byte unchanged
    return err[0]


def _state(out: Path) -> Path:
    return sorted((out / "checkpoints").iterdir())[-1] / "state.npz"


def test_truncated_checkpoint_is_refused(capsys, finished_run):
    state = _state(finished_run)
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    (finished_run / "summary.json").unlink()
    msg = _resume_fails(capsys, finished_run, "run.rounds=2")
    assert "state.npz" in msg and "truncated or corrupted" in msg


def test_checkpoint_with_flipped_bytes_is_refused(capsys, finished_run):
    state = _state(finished_run)
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    (finished_run / "summary.json").unlink()
    msg = _resume_fails(capsys, finished_run)
    assert "state.npz" in msg


def test_checkpoint_of_a_different_model_is_refused(capsys, tmp_path, finished_run):
    # Prepare: a run of a wider model; put its checkpoint where finished_run's was
    other = tmp_path / "other"
    assert (
        main(
            [
                "run",
                *BASE,
                "run.rounds=2",
                "model.hidden=64",
                "engine.name=local",
                f"run.results_dir={other}",
                "--quiet",
            ]
        )
        == 0
    )
    mine, theirs = _state(finished_run).parent, _state(other).parent
    import json

    from fedref_ray.checkpoint_integrity import seal

    meta = json.loads((theirs / "meta.json").read_text())
    meta["config_fingerprint"] = json.loads((mine / "meta.json").read_text())["config_fingerprint"]
    (mine / "state.npz").write_bytes((theirs / "state.npz").read_bytes())
    meta = seal(meta, mine, finished_run)  # a forger who re-seals: only the model check is left to catch it
    (mine / "meta.json").write_text(json.dumps(meta))
    (finished_run / "summary.json").unlink()
    msg = _resume_fails(capsys, finished_run)
    assert "different model" in msg


def test_resume_with_a_different_config_is_refused(capsys, finished_run):
    msg = _resume_fails(capsys, finished_run, *BASE, "run.rounds=2", "algorithm.lam=0.7")
    assert "algorithm.lam" in msg


def test_non_empty_results_folder_is_refused_without_resume_or_overwrite(capsys, finished_run):
    before = snapshot_tree(finished_run)
    code = main(["run", *BASE, "engine.name=local", f"run.results_dir={finished_run}", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--overwrite" in err[0]
    assert snapshot_tree(finished_run) == before


def test_checkpoints_are_pruned_to_keep_checkpoints(tmp_path):
    out = tmp_path / "run"
    args = [*BASE, "run.rounds=6", "run.checkpoint_every=1", "run.keep_checkpoints=2", "engine.name=local"]
    assert main(["run", *args, f"run.results_dir={out}", "--quiet"]) == 0
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["round-000005", "round-000006"]


def test_nan_client_update_is_rejected_counted_and_harmless(tmp_path):
    from fedref_ray.simulation import run_experiment

    clean = run_experiment(tiny_config(tmp_path / "clean", "run.rounds=2"), quiet=True)
    faulty = run_experiment(
        tiny_config(tmp_path / "nan", "run.rounds=2", "system.faulty_fraction=0.3", "system.fault_kind=nan"), quiet=True
    )
    rounds = pd.read_parquet(faulty.results_dir / "rounds.parquet")
    clients = pd.read_parquet(faulty.results_dir / "clients.parquet")
    assert rounds["clients_rejected"].sum() == int(clients["rejected"].sum()) > 0
    assert (clients.loc[clients["rejected"], "fault"] == "nan").all()
    assert all(np.isfinite(v).all() for v in faulty.params.values())
    assert (rounds["clients_reported"] + rounds["clients_rejected"] == 5).all()
    again = run_experiment(tiny_config(tmp_path / "clean2", "run.rounds=2"), quiet=True)
    for k in clean.params:  # the fault-free run is unaffected by the fault machinery
        np.testing.assert_array_equal(clean.params[k], again.params[k])


def test_results_hold_no_home_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    out = tmp_path / "run"
    assert main(["run", *BASE, "run.rounds=1", "engine.name=local", f"run.results_dir={out}", "--quiet"]) == 0
    text = (out / "config.yaml").read_text()
    assert str(tmp_path) not in text and "results_dir: ~/run" in text
