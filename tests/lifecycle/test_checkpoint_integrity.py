"""Checkpoints are verified whole: meta.json is under the hash, and a checkpoint of another run is refused.

Each refusal is one line naming the file, leaves the folder byte-identical, and, when an older
checkpoint is valid, names it and how to resume from it.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from fedref_ray.cli import main
from tests.lifecycle.test_checkpoint_resume import BASE, _resume_fails

ARGS = [*BASE, "engine.name=local", "run.rounds=4", "run.checkpoint_every=1", "run.keep_checkpoints=2"]


@pytest.fixture
def run_to_resume(tmp_path):
    """A finished 4-round run with checkpoints of rounds 3 and 4, its summary removed so it can be resumed."""
    out = tmp_path / "run"
    assert main(["run", *ARGS, f"run.results_dir={out}", "--quiet"]) == 0
    (out / "summary.json").unlink()
    return out


def _edit_meta(folder, **changes) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


@pytest.mark.parametrize("field", ["round", "last_accuracy", "samples"])
def test_an_edited_meta_json_is_refused_naming_it_and_the_older_valid_checkpoint(capsys, run_to_resume, field):
    # Prepare: the newest checkpoint's meta.json edited, still valid JSON of the right shape
    newest = run_to_resume / "checkpoints" / "round-000004"
    meta = json.loads((newest / "meta.json").read_text())
    _edit_meta(newest, **{field: (meta[field] or 0) + 1})
    # Execute (the helper asserts exit 2, one line, and a byte-identical folder)
    msg = _resume_fails(capsys, run_to_resume)
    # Assert
    assert f"'{newest / 'meta.json'}'" in msg and "edited" in msg
    assert "older checkpoint 'round-000003' is valid" in msg and f"delete '{newest}'" in msg


def test_following_the_hint_resumes_from_the_older_checkpoint(capsys, run_to_resume):
    # Prepare: a damaged newest checkpoint, refused once
    newest = run_to_resume / "checkpoints" / "round-000004"
    _edit_meta(newest, round=2)
    _resume_fails(capsys, run_to_resume)
    # Execute: do what the message says
    shutil.rmtree(newest)
    code = main(["run", "--resume", str(run_to_resume), "--quiet"])
    # Assert: round 4 ran again from round 3's checkpoint
    assert code == 0
    assert list(pd.read_parquet(run_to_resume / "rounds.parquet")["round"]) == [1, 2, 3, 4]
    assert json.loads((newest / "meta.json").read_text())["round"] == 4


def test_a_checkpoint_swapped_in_from_another_run_of_the_same_config_is_refused(capsys, tmp_path, run_to_resume):
    # Prepare: the same config run again elsewhere (same fingerprint, other run id); its round 4 swapped in whole
    other = tmp_path / "other"
    assert main(["run", *ARGS, f"run.results_dir={other}", "--quiet"]) == 0
    newest = run_to_resume / "checkpoints" / "round-000004"
    shutil.rmtree(newest)
    shutil.copytree(other / "checkpoints" / "round-000004", newest)
    # Execute
    msg = _resume_fails(capsys, run_to_resume)
    # Assert
    assert f"checkpoint '{newest}' belongs to another run" in msg and "run.json" in msg
    assert "older checkpoint 'round-000003' is valid" in msg


def test_when_no_checkpoint_is_valid_the_message_offers_none(capsys, run_to_resume):
    # Prepare: both checkpoints' state files damaged
    for folder in (run_to_resume / "checkpoints").iterdir():
        state = folder / "state.npz"
        state.write_bytes(state.read_bytes()[:-10])
    # Execute
    msg = _resume_fails(capsys, run_to_resume)
    # Assert
    assert "round-000004" in msg and "state.npz" in msg and "truncated or corrupted" in msg
    assert "is valid" not in msg


def test_a_meta_json_rewritten_with_the_same_content_is_accepted(run_to_resume):
    # Prepare: meta.json re-serialised differently (key order, no indentation): the content hash is unchanged
    newest = run_to_resume / "checkpoints" / "round-000004"
    meta = json.loads((newest / "meta.json").read_text())
    (newest / "meta.json").write_text(json.dumps(dict(reversed(list(meta.items())))))
    # Execute
    code = main(["run", "--resume", str(run_to_resume), "--quiet"])
    # Assert
    assert code == 0
