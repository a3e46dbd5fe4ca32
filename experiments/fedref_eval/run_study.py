"""Run the FedRef evaluation: tune each algorithm (tune.yaml), evaluate the tuned algorithms (eval.yaml),
then check FedRef's sensitivity to its prior (sensitivity.yaml).

    RAY_AUTH_MODE=disabled python experiments/fedref_eval/run_study.py [--stage tune|eval|sensitivity|all] [--redo]

Each stage is a Tune sweep in results/fedref_eval/<stage> at the repository root (the per-trial
run folders); what is committed goes to experiments/fedref_eval/results/: <stage>_trials.parquet,
tuned.json (the chosen coefficients), <stage>_sweep.yaml (stages 2 and 3 exactly as run) and
study_meta.json. A stage whose results table exists is skipped (--redo runs it again from
scratch); an interrupted stage is resumed. Then run report.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import study  # noqa: E402 - this folder's helper module (the script's folder is on sys.path)

from fedref_ray.errors import UserError  # noqa: E402
from fedref_ray.results import atomic_write  # noqa: E402
from fedref_ray.tune.layout import SPEC_FILE, TRIALS_FILE  # noqa: E402
from fedref_ray.tune.runner import SweepOutcome, resume_sweep, run_sweep  # noqa: E402
from fedref_ray.tune.space import SweepLoader, load_sweep, parse_sweep  # noqa: E402

SWEEPS = study.HERE.parent.parent / "results" / "fedref_eval"


def _sweep(make_spec, sweep_dir: Path, redo: bool) -> SweepOutcome:
    """Run the stage's sweep, or resume it when an earlier call was interrupted."""
    if redo and sweep_dir.exists():
        shutil.rmtree(sweep_dir)
    if (sweep_dir / SPEC_FILE).is_file():
        print(f"resuming {sweep_dir}", flush=True)
        outcome = resume_sweep(sweep_dir)
    else:
        if sweep_dir.exists():
            shutil.rmtree(sweep_dir)  # a folder without a saved spec: nothing ran
        outcome = run_sweep(make_spec(), sweep_dir, quiet=True)
    if outcome.failed or outcome.unfinished:
        raise UserError(
            f"{sweep_dir}: {outcome.failed} trials failed, {outcome.unfinished} unfinished "
            f"(errors: {', '.join(outcome.error_files) or '-'}); run the study again to resume"
        )
    return outcome


def _save_table(sweep_dir: Path, dest: Path) -> pd.DataFrame:
    table = study.slim(pd.read_parquet(sweep_dir / TRIALS_FILE))
    atomic_write(dest, lambda tmp: table.to_parquet(tmp, index=False))
    return table


def tune_stage(redo: bool) -> float:
    began = time.perf_counter()
    spec = load_sweep(study.HERE / "tune.yaml")
    outcome = _sweep(lambda: spec, SWEEPS / "tune", redo)
    table = _save_table(outcome.sweep_dir, study.TUNE_TRIALS)
    # tune.yaml's `dataset` dimension: each dataset with its model and target accuracy
    datasets = [dict(v) for d in spec.space if d.name == "dataset" for v in d.values]
    settings = study.select_tuned(table, datasets)
    atomic_write(study.TUNED, lambda tmp: Path(tmp).write_text(json.dumps(settings, indent=2) + "\n"))
    print(f"tune: {outcome.trials} trials; chosen settings in {study.TUNED}", flush=True)
    return time.perf_counter() - began


def _stage_spec(settings: list[dict], extra: dict | None = None):
    """eval.yaml with a `setting` dimension first, and `extra`'s overrides and dimensions merged in."""
    raw = yaml.load((study.HERE / "eval.yaml").read_text(), Loader=SweepLoader)  # noqa: S506 - a safe loader
    extra = extra or {}
    raw["overrides"] = {**raw["overrides"], **extra.get("overrides", {})}
    raw["space"] = {"setting": study.eval_space(settings), **extra.get("space", {}), **raw["space"]}
    return parse_sweep(raw, str(study.HERE / "eval.yaml"), study.HERE)


def eval_spec():
    """Every tuned algorithm on every cell."""
    return _stage_spec(json.loads(study.TUNED.read_text()))


def sensitivity_spec():
    """FedRef's variants of sensitivity.yaml on every cell, at each dataset's tuned FedRef learning rate."""
    extra = yaml.load((study.HERE / "sensitivity.yaml").read_text(), Loader=SweepLoader)  # noqa: S506
    settings = [
        {f: s[f] for f in (*study.DATASET_FIELDS, "training.lr")}
        for s in json.loads(study.TUNED.read_text())
        if s["algorithm.name"] == "fedref"
    ]
    return _stage_spec(settings, extra)


def _tuned_stage(name: str, make_spec, table: Path, redo: bool) -> float:
    """A stage on the tuned settings (eval, sensitivity); its sweep file is kept as results/<name>_sweep.yaml."""
    if not study.TUNED.is_file():
        raise UserError(f"{study.TUNED} is missing: run the tune stage first (--stage tune)")
    began = time.perf_counter()
    outcome = _sweep(make_spec, SWEEPS / name, redo)
    shutil.copyfile(outcome.sweep_dir / SPEC_FILE, study.RESULTS / f"{name}_sweep.yaml")
    _save_table(outcome.sweep_dir, table)
    print(f"{name}: {outcome.trials} trials; table in {table}", flush=True)
    return time.perf_counter() - began


def _record(stage: str, seconds: float) -> None:
    meta = json.loads(study.META.read_text()) if study.META.is_file() else {}
    meta[f"{stage}_wall_seconds"] = round(seconds, 1)
    meta[f"{stage}_finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    atomic_write(study.META, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("tune", "eval", "sensitivity", "all"), default="all")
    parser.add_argument("--redo", action="store_true", help="run the stage(s) again even if their results exist")
    args = parser.parse_args(argv)
    study.RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        stages = {
            "tune": (study.TUNE_TRIALS, tune_stage),
            "eval": (study.EVAL_TRIALS, lambda redo: _tuned_stage("eval", eval_spec, study.EVAL_TRIALS, redo)),
            "sensitivity": (
                study.SENSITIVITY_TRIALS,
                lambda redo: _tuned_stage("sensitivity", sensitivity_spec, study.SENSITIVITY_TRIALS, redo),
            ),
        }
        for stage, (results, run) in stages.items():
            if args.stage not in (stage, "all"):
                continue
            if results.is_file() and not args.redo:
                print(f"{stage}: {results} exists, skipped (--redo runs it again)", flush=True)
                continue
            _record(stage, run(args.redo))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("now: python experiments/fedref_eval/report.py", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
