"""Results folders that cannot be mixed: --overwrite empties, one process at a time, checkpoints of one run only.

Real processes on real folders, in-process engine: the lock and the folder rules do not depend on the engine.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pandas as pd

from fedref_ray.checkpoint_integrity import prune
from fedref_ray.cli import main
from fedref_ray.locking import LOCK_NAME
from tests.lifecycle.test_checkpoint_resume import BASE, assert_same_run, cli, snapshot_tree

LOCAL = [*BASE, "engine.name=local"]


def wait_for(path: Path, proc, timeout: float = 300) -> None:
    """Wait until `path` exists; fail at once, with the run's stderr, if the run ends first."""
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {path} appeared: {proc.stderr.read()}")
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def _finish(proc) -> str:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return err


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("fedref-ray: error: "), lines
    return lines[0]


def test_overwrite_then_kill_then_resume_equals_an_uninterrupted_run(tmp_path):
    # Prepare: an old run whose late checkpoints (rounds 5, 6) would outrank a new run's, and a reference
    new = ["run.seed=1", "run.rounds=6", "run.checkpoint_every=1", "run.keep_checkpoints=10"]
    out, ref = tmp_path / "run", tmp_path / "ref"
    _finish(cli("run", *LOCAL, "run.rounds=6", "run.checkpoint_every=1", f"run.results_dir={out}", "--quiet"))
    old_run_id = json.loads((out / "run.json").read_text())["run_id"]
    _finish(cli("run", *LOCAL, *new, f"run.results_dir={ref}", "--quiet"))
    # Execute: overwrite with another seed, SIGKILL once its round-2 checkpoint exists, then resume
    proc = cli("run", *LOCAL, *new, f"run.results_dir={out}", "--quiet", "--overwrite")
    wait_for(out / "checkpoints" / "round-000002" / "meta.json", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    stale_lock = (out / LOCK_NAME).read_text().split()[0]
    resumed = cli("run", "--resume", str(out), "--quiet")
    _finish(resumed)
    # Assert: the killed run's stale lock was taken over; only the new run's files remain; same result
    assert stale_lock == str(proc.pid)
    assert not (out / LOCK_NAME).exists()
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert run_id != old_run_id
    metas = [json.loads((p / "meta.json").read_text()) for p in sorted((out / "checkpoints").iterdir())]
    assert [m["round"] for m in metas] == [1, 2, 3, 4, 5, 6]
    assert {m["run_id"] for m in metas} == {run_id}
    assert "seed: 1" in (out / "config.yaml").read_text()
    assert_same_run(ref, out)


def test_a_second_run_on_a_busy_folder_is_refused_and_the_first_finishes_untouched(capsys, tmp_path):
    # Prepare: a run holding the folder, frozen (SIGSTOP) after its first round so that it surely still holds it
    out, ref = tmp_path / "run", tmp_path / "ref"
    args = [*LOCAL, "run.rounds=4", "run.checkpoint_every=1"]
    first = cli("run", *args, f"run.results_dir={out}", "--quiet")
    wait_for(out / "rounds.parquet", first)
    first.send_signal(signal.SIGSTOP)
    try:
        # Execute: an overwrite, a resume and a plain run of the same folder while it is held
        outcomes = []
        for argv in (
            ["run", *args, f"run.results_dir={out}", "--quiet", "--overwrite"],
            ["run", "--resume", str(out), "--quiet"],
            ["run", *args, f"run.results_dir={out}", "--quiet"],
        ):
            outcomes.append((main(argv), _one_error_line(capsys)))
    finally:
        first.send_signal(signal.SIGCONT)
    _finish(first)
    _finish(cli("run", *args, f"run.results_dir={ref}", "--quiet"))
    # Assert: each refused at once with one line naming the holder's pid; the first run's folder is whole
    for code, err in outcomes:
        assert code == 2
        assert f"is in use by process {first.pid}" in err and "run.results_dir" in err
    assert_same_run(ref, out)
    assert len(pd.read_parquet(out / "rounds.parquet")) == 4
    assert not (out / LOCK_NAME).exists()


def test_overwrite_refuses_a_folder_holding_files_no_run_writes(capsys, tmp_path):
    # Prepare: a folder of someone's own files
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    (out / "config.yaml").write_text("run: {}\n")
    before = snapshot_tree(out)
    # Execute
    code = main(["run", *LOCAL, "run.rounds=1", f"run.results_dir={out}", "--quiet", "--overwrite"])
    # Assert: refused, naming the stranger file, and nothing touched
    err = _one_error_line(capsys)
    assert code == 2 and "notes.txt" in err and "--overwrite" in err
    assert snapshot_tree(out) == before


def test_a_run_refused_before_writing_leaves_no_folder_behind(capsys, tmp_path):
    # Prepare: a results folder that does not exist yet, and a data folder that does not either
    out = tmp_path / "new" / "run"
    # Execute
    code = main(["run", *LOCAL, "data.name=mnist", f"data.root={tmp_path / 'absent'}", f"run.results_dir={out}"])
    # Assert
    assert code == 2 and "data.root" in _one_error_line(capsys)
    assert not out.exists()


def test_a_renamed_checkpoint_folder_cannot_pass_for_a_newer_round(capsys, tmp_path):
    # Prepare: a finished run; its round-2 checkpoint renamed so that its folder name outranks round 4's
    out = tmp_path / "run"
    args = [*LOCAL, "run.rounds=4", "run.checkpoint_every=2", "run.keep_checkpoints=3"]
    assert main(["run", *args, f"run.results_dir={out}", "--quiet"]) == 0
    checkpoints = out / "checkpoints"
    (checkpoints / "round-000002").rename(checkpoints / "round-000009")
    (out / "summary.json").unlink()
    before = snapshot_tree(out)
    # Execute
    code = main(["run", "--resume", str(out), "--quiet"])
    # Assert: refused (the name and the recorded round disagree), pointing at round 4, the valid newest
    err = _one_error_line(capsys)
    assert code == 2 and "round-000009" in err and "records round 2" in err
    assert "older checkpoint 'round-000004' is valid" in err
    assert snapshot_tree(out) == before


def test_pruning_keeps_this_runs_newest_checkpoints_whatever_another_runs_are_named(tmp_path):
    # Prepare: a run's four checkpoints beside another run's early ones, planted under names that outrank them all
    other, out = tmp_path / "other", tmp_path / "run"
    args = [*LOCAL, "run.rounds=4", "run.checkpoint_every=1", "run.keep_checkpoints=9"]
    for folder in (other, out):
        assert main(["run", *args, f"run.results_dir={folder}", "--quiet"]) == 0
    checkpoints = out / "checkpoints"
    for round_ in (1, 2):
        shutil.copytree(other / "checkpoints" / f"round-00000{round_}", checkpoints / f"round-00001{round_}")
    planted = {name: snapshot_tree(checkpoints / name) for name in ("round-000011", "round-000012")}
    # Execute: what save_checkpoint does after writing round 4 with run.keep_checkpoints=2
    prune(checkpoints, keep=2, written=checkpoints / "round-000004")
    # Assert: this run's newest two are kept; the other run's are not this run's to remove
    assert sorted(p.name for p in checkpoints.iterdir()) == ["round-000003", "round-000004", *planted]
    assert {name: snapshot_tree(checkpoints / name) for name in planted} == planted


def test_overwrite_replaces_every_file_a_run_writes_including_client_state(tmp_path):
    # Prepare: a run of a stateful algorithm (SCAFFOLD keeps client_state/ in the folder) with checkpoints
    out = tmp_path / "run"
    args = ["data.name=digits", "model.name=logreg", "algorithm.name=scaffold", "engine.name=local",
            "run.rounds=2", "run.checkpoint_every=1", "partition.num_clients=6", "run.clients_per_round=2",
            f"run.results_dir={out}"]  # fmt: skip
    assert main(["run", *args, "--quiet"]) == 0
    first_id = json.loads((out / "run.json").read_text())["run_id"]
    assert (out / "client_state").is_dir()
    # Execute
    code = main(["run", *args, "run.seed=5", "--quiet", "--overwrite"])
    # Assert: the folder now holds the second run only
    assert code == 0
    assert json.loads((out / "run.json").read_text())["run_id"] != first_id
    assert {json.loads((p / "meta.json").read_text())["run_id"] for p in (out / "checkpoints").iterdir()} == {
        json.loads((out / "run.json").read_text())["run_id"]
    }
    assert "seed: 5" in (out / "config.yaml").read_text()
