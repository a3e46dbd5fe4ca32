"""A stateful algorithm (SCAFFOLD) across interruptions: its per-client state is part of every checkpoint.

Six clients, five a round: most clients return, so a resume that lost or mixed up their control
variates c_k would change the model.
"""

from __future__ import annotations

import signal

import pytest

from tests.lifecycle.test_checkpoint_resume import assert_same_run, cli, wait_for

SCAFFOLD = [
    "data.name=digits", "model.name=mlp", "model.hidden=32", "partition.num_clients=6", "run.clients_per_round=5",
    "training.batch_size=16", "algorithm.name=scaffold", "run.checkpoint_every=2", "run.rounds=6",
]  # fmt: skip


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_sigkill_after_a_checkpoint_then_resume_equals_an_uninterrupted_scaffold_run(tmp_path, engine):
    # Prepare: an uninterrupted reference run, in a process of its own like the others
    where = [f"engine.name={engine}", "engine.num_workers=2"]
    ref = tmp_path / "ref"
    uninterrupted = cli("run", *SCAFFOLD, *where, f"run.results_dir={ref}", "--quiet")
    _, err = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, err
    # Execute: SIGKILL once the round-4 checkpoint exists (rounds 5-6 may have written newer state files), resume
    out = tmp_path / "killed"
    proc = cli("run", *SCAFFOLD, *where, f"run.results_dir={out}", "--quiet")
    wait_for(out / "checkpoints" / "round-000004" / "meta.json")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    checkpoint_files = sorted(p.name for p in (out / "checkpoints" / "round-000004" / "client_state").iterdir())
    resumed = cli("run", "--resume", str(out), "--quiet")
    _, err = resumed.communicate(timeout=300)
    # Assert: the checkpoint carried client-state files, and the resumed run is the uninterrupted one
    assert checkpoint_files and all(name.startswith("round-") for name in checkpoint_files)
    assert resumed.returncode == 0, err
    assert_same_run(ref, out)
