"""SIGINT and SIGTERM on both engines: finish the round, checkpoint, print the resume hint, exit 128 + signal.

Under Ray, ray.init() installs its own SIGTERM handler; the run must put its own back (it once gave
exit 15 and a C++ stack dump). Every case resumes and must equal an uninterrupted run, and no process
the interrupted run started may outlive it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.lifecycle.test_checkpoint_resume import BASE, assert_same_run, cli
from tests.lifecycle.test_results_folder import wait_for

ROUNDS = ["run.rounds=30", "run.checkpoint_every=1", "engine.num_workers=2"]


def descendants(pid: int) -> list[int]:
    """Every live process whose parent chain leads to `pid`."""
    rows = [line.split() for line in subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True)
            .stdout.splitlines()[1:]]  # fmt: skip
    children: dict[int, list[int]] = {}
    for child, parent in ((int(a), int(b)) for a, b in rows):
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True unless the process is gone or a zombie (its exit not yet collected)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids: list[int], deadline_s: float = 60) -> list[int]:
    """The pids still alive after waiting up to `deadline_s` for them to exit (a guard, not a measurement)."""
    end = time.time() + deadline_s
    while any(alive(p) for p in pids) and time.time() < end:
        time.sleep(0.2)
    return [p for p in pids if alive(p)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted run per engine, in its own process like the interrupted ones (same torch threads)."""
    runs = {}
    for engine in ("local", "ray"):
        out = tmp_path_factory.mktemp(f"ref-{engine}") / "run"
        proc = cli("run", *BASE, *ROUNDS, f"engine.name={engine}", f"run.results_dir={out}", "--quiet")
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        runs[engine] = out
    return runs


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_signal_checkpoints_exits_128_plus_it_and_the_resumed_run_is_identical(
    tmp_path, uninterrupted, engine, signum
):
    # Prepare: a run past its first round, and the processes it started (Ray's daemons and workers)
    out = tmp_path / "run"
    proc = cli("run", *BASE, *ROUNDS, f"engine.name={engine}", f"run.results_dir={out}", "--quiet")
    wait_for(out / "rounds.parquet", proc)
    started = descendants(proc.pid)
    # Execute
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    left = wait_gone(started)
    # Assert: 128 + signal, the resume hint as the last line, a checkpoint of the last recorded round, nothing left
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1].endswith(f"resume with: fedref-ray run --resume {out}"), err
    assert "Traceback" not in err and "SIGTERM" not in err
    done = len(pd.read_parquet(out / "rounds.parquet"))
    newest = sorted((out / "checkpoints").iterdir())[-1]
    assert json.loads((newest / "meta.json").read_text())["round"] == done < 30
    assert left == [], f"processes left behind: {left}"
    if engine == "ray":
        assert started, "a Ray run starts processes of its own"
    resumed = cli("run", "--resume", str(out), "--quiet")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert_same_run(uninterrupted[engine], out)
