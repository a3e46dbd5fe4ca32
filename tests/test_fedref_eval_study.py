"""The FedRef evaluation study (experiments/fedref_eval/): coefficient selection, run summaries, and a report
that regenerates the committed tables from the committed results. No Ray."""

from __future__ import annotations

import filecmp
import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

STUDY_DIR = Path(__file__).resolve().parent.parent / "experiments" / "fedref_eval"
SCALING_DIR = STUDY_DIR.parent / "scaling"


def _load(folder: Path, name: str):
    """Import a study script as its folder would (its sibling modules importable)."""
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(f"{folder.name}_{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(folder))


study = _load(STUDY_DIR, "study")


def _run(trial, algorithm, seed, accs, lr=0.1, dataset="mnist5k", **coefficients):
    """One trial's rows: accuracy per round, 1 MB and 100 samples per round, forgetting 0.1 * round."""
    fields = {"algorithm.mu": 0.0, "algorithm.lam": 0.1, "algorithm.server_lr": 0.01, **coefficients}
    return [
        {
            "trial_id": trial,
            "data.name": dataset,
            "model.name": "mlp",
            "run.target_accuracy": 0.5,
            "algorithm.name": algorithm,
            **fields,
            "training.lr": lr,
            "partition.alpha": 0.3,
            "system.faulty_fraction": 0.0,
            "run.seed": seed,
            "round": r + 1,
            "test_accuracy": acc,
            "bytes_total": (r + 1) * 1_000_000,
            "samples": (r + 1) * 100,
            "forgetting": 0.1 * (r + 1),
            "accuracy_drops": r,
        }
        for r, acc in enumerate(accs)
    ]


def test_select_tuned_takes_the_best_mean_over_seeds_per_algorithm() -> None:
    rows = [
        *_run("a", "fedavg", 10, [0.5, 0.8], lr=0.1),
        *_run("b", "fedavg", 11, [0.5, 0.6], lr=0.1),  # mean 0.7
        *_run("c", "fedavg", 10, [0.5, 0.9], lr=0.3),
        *_run("d", "fedavg", 11, [0.5, float("nan")], lr=0.3),  # diverged: scores 0, mean 0.45
        *_run("e", "fedprox", 10, [0.5, 0.7], **{"algorithm.mu": 0.01}),
        *_run("f", "fedprox", 10, [0.5, 0.75], **{"algorithm.mu": 0.1}),
        *_run("g", "fedopt", 10, [0.5, 0.7], **{"algorithm.server_lr": 0.03}),
        *_run("h", "fedref", 10, [0.5, 0.7], **{"algorithm.lam": 1.0}),
    ]
    dataset = {"data.name": "mnist5k", "model.name": "mlp", "run.target_accuracy": 0.5}

    settings = study.select_tuned(pd.DataFrame(rows), [dataset])

    by_algorithm = {s["algorithm.name"]: s for s in settings}
    assert [s["algorithm.name"] for s in settings] == list(study.ALGORITHMS)
    assert by_algorithm["fedavg"]["training.lr"] == 0.1 and math.isclose(by_algorithm["fedavg"]["tuning_score"], 0.7)
    assert by_algorithm["fedprox"]["algorithm.mu"] == 0.1
    assert by_algorithm["fedopt"]["algorithm.server_lr"] == 0.03
    assert by_algorithm["fedref"]["algorithm.lam"] == 1.0
    assert "algorithm.lam" not in by_algorithm["fedprox"]  # only the tuned coefficients travel
    assert "tuning_score" not in study.eval_space(settings)["grid"][0]


def test_select_tuned_names_a_missing_algorithm() -> None:
    rows = _run("a", "fedavg", 10, [0.5])
    with pytest.raises(ValueError, match="fedprox"):
        study.select_tuned(pd.DataFrame(rows), [{"data.name": "mnist5k"}])


def test_run_summaries_count_costs_up_to_the_first_round_at_target() -> None:
    rows = [*_run("a", "fedref", 0, [0.3, 0.55, 0.4, 0.6]), *_run("b", "fedref", 1, [0.1, 0.2, 0.3, 0.4])]

    summaries = study.run_summaries(pd.DataFrame(rows)).set_index("run.seed")

    reached, missed = summaries.loc[0], summaries.loc[1]
    assert (reached["rounds_to_target"], reached["mb_to_target"], reached["samples_to_target"]) == (2, 2.0, 200)
    assert reached["final_acc"] == 0.6 and reached["best_acc"] == 0.6
    assert math.isclose(reached["final_forgetting"], 0.4) and math.isclose(reached["mean_forgetting"], 0.25)
    assert reached["accuracy_drops"] == 3
    assert math.isnan(missed["rounds_to_target"]) and math.isnan(missed["mb_to_target"])


def _regenerates_committed(folder: Path, script: str, outputs: list[str], tmp_path: Path, args: list[str]) -> None:
    report = _load(folder, script)
    for out in ("a", "b"):
        report.main([*args, "--out", str(tmp_path / out)])
    for name in outputs:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), f"{name} differs between runs"
    text = outputs[0]
    assert (tmp_path / "a" / text).read_text() == (folder / "results" / text).read_text(), (
        f"committed {text} is stale: rerun python {folder.relative_to(folder.parent.parent)}/{script}.py"
    )


def test_fedref_eval_report_regenerates_the_committed_tables(tmp_path: Path) -> None:
    _regenerates_committed(STUDY_DIR, "report", ["report.md", "accuracy.png", "forgetting.png"], tmp_path, [])


def test_scaling_report_regenerates_the_committed_tables(tmp_path: Path) -> None:
    parquet = SCALING_DIR / "results" / "scaling.parquet"
    _regenerates_committed(
        SCALING_DIR, "report", ["scaling.md", "s_per_round.png", "peak_pss.png"], tmp_path, ["--parquet", str(parquet)]
    )


def test_committed_sweep_files_are_what_run_study_builds_from_tuned_json() -> None:
    from fedref_ray.tune.space import dump_sweep

    run_study = _load(STUDY_DIR, "run_study")

    for name, build, trials in (("eval", run_study.eval_spec, 144), ("sensitivity", run_study.sensitivity_spec, 108)):
        spec = build()
        assert spec.num_grid_points() == trials
        assert dump_sweep(spec) == (STUDY_DIR / "results" / f"{name}_sweep.yaml").read_text()
