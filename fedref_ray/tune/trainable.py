"""The function trainable: one trial is one full simulation, reporting every round to Tune.

The trial's client-worker actors and server actor join the trial's placement group (the Ray
engine does that when it finds one), so a trial never uses more than Tune reserved for it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedref_ray.checkpoint import list_checkpoints
from fedref_ray.metrics import RoundRecord
from fedref_ray.tune import tune_compat
from fedref_ray.tune.layout import CHECKPOINTS_DIR, SUMMARY_FILE, trial_results_dir
from fedref_ray.tune.metrics import round_metrics
from fedref_ray.tune.space import Dimension, resolve_point, trial_config


@dataclass(frozen=True)
class TrialSetup:
    """What every trial shares: the resolved base config, the search space, and where runs go."""

    base: Mapping[str, Any]
    space: tuple[Dimension, ...]
    runs_dir: str


def resumable_round(out: Path, seen: int) -> int:
    """The round a restored trial's simulation can continue from (0: run again from round 1).

    Tune's checkpoint is the record: the simulation's own checkpoints past `seen` (rounds Tune never
    recorded) are dropped, so that those rounds run again and get reported; a finished run is not resumed.
    """
    if (out / SUMMARY_FILE).is_file():
        return 0
    kept = 0
    for folder in list_checkpoints(out / CHECKPOINTS_DIR):
        round_ = int(folder.name.rsplit("-", 1)[-1])
        if round_ > seen:
            shutil.rmtree(folder)
        else:
            kept = max(kept, round_)
    return kept


def train_trial(point: dict[str, Any], setup: TrialSetup) -> None:
    """Run the simulation of one sampled point quietly, reporting each round (with a checkpoint) to Tune.

    A trial Tune restores continues from the simulation's own checkpoint (with `run.checkpoint_every`
    set) and otherwise reruns from round 1, seeded, hence identically; either way it reports only the
    rounds Tune has not seen. A trial whose run had finished is not run again.
    """
    from fedref_ray.simulation import run_experiment  # torch: only inside the trial process

    started_at = time.time()
    out = trial_results_dir(setup.runs_dir, tune_compat.trial_id())
    cfg = trial_config(setup.base, resolve_point(setup.space, point), results_dir=str(out))
    seen = tune_compat.checkpointed_round()
    if seen >= cfg.run.rounds and (out / SUMMARY_FILE).is_file():
        return
    resume = resumable_round(out, seen) > 0

    def report(record: RoundRecord) -> None:
        if record.round > seen:
            tune_compat.report_round(round_metrics(record, started_at), record.round)

    run_experiment(cfg, quiet=True, overwrite=not resume, resume=resume, on_round=report)
