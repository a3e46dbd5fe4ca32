"""Tests for the report: loading results folders, grouping seeds, the markdown table, the plots and the CLI."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fedref_ray.algorithms.fedref import FedRefParams
from fedref_ray.cli import main
from fedref_ray.config import AlgorithmConfig, ExperimentConfig, RunConfig, config_to_yaml
from fedref_ray.errors import UserError
from fedref_ray.report import REPORT_FILES, group_runs, load_run, summary_table, write_report

TARGET = 0.5
MB = 1_000_000


def make_run(
    folder: Path,
    *,
    algorithm: str = "fedref",
    lam: float = 0.1,
    seed: int = 0,
    accuracy: list[float],
    forgetting: list[float],
    drops: list[int],
) -> Path:
    """Write a finished run's config.yaml, rounds.parquet and summary.json: each round sends 1 MB down,
    1 MB up and trains 100 client samples, so round r has cumulative 2r MB and 100r samples."""
    folder.mkdir(parents=True)
    cfg = ExperimentConfig(
        algorithm=AlgorithmConfig(name=algorithm, params=FedRefParams(lam=lam) if algorithm == "fedref" else None),
        run=RunConfig(seed=seed, rounds=3, target_accuracy=TARGET, results_dir=str(folder)),
    )
    (folder / "config.yaml").write_text(config_to_yaml(cfg))
    n = len(accuracy)
    rounds = list(range(1, n + 1))
    rows = {
        "round": rounds,
        "wall_seconds": [0.1] * n,
        "sim_seconds": [1.0] * n,
        "test_accuracy": accuracy,
        "test_loss": [1.0 - a for a in accuracy],
        "class_accuracy": [[a, a] for a in accuracy],
        "forgetting": forgetting,
        "accuracy_drops": drops,
        "train_loss": [0.5] * n,
        "bytes_down": [MB * r for r in rounds],
        "bytes_up": [MB * r for r in rounds],
        "samples": [100 * r for r in rounds],
        "clients_sampled": [5] * n,
        "clients_reported": [5] * n,
        "clients_rejected": [0] * n,
        "server_step_applied": [True] * n,
    }
    pq.write_table(pa.table(rows), folder / "rounds.parquet")
    hit = next((r for r, a in zip(rounds, accuracy, strict=True) if a >= TARGET), None)
    summary = {
        "algorithm": algorithm,
        "seed": seed,
        "rounds": n,
        "final_accuracy": accuracy[-1],
        "best_accuracy": max(accuracy),
        "target_accuracy": TARGET,
        "rounds_to_target": hit,
        "bytes_to_target": None if hit is None else 2 * MB * hit,
        "samples_to_target": None if hit is None else 100 * hit,
        "wall_seconds": 0.1 * n,
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def three_runs(tmp_path: Path) -> list[Path]:
    """Two seeds of fedref lam=0.1 (target reached at rounds 2 and 3) and one of lam=1.0 (never reached)."""
    return [
        make_run(tmp_path / "a", seed=0, accuracy=[0.3, 0.5, 0.6], forgetting=[0.0, 0.1, 0.05], drops=[0, 0, 0]),
        make_run(tmp_path / "b", seed=1, accuracy=[0.2, 0.1, 0.7], forgetting=[0.0, 0.2, 0.1], drops=[0, 1, 1]),
        make_run(tmp_path / "c", lam=1.0, accuracy=[0.1, 0.2, 0.3], forgetting=[0.0, 0.0, 0.02], drops=[0, 0, 0]),
    ]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_load_run_reads_the_three_files(three_runs: list[Path]) -> None:
    # Execute
    run = load_run(three_runs[1])

    # Assert
    assert run.seed == 1 and run.algorithm == "fedref"
    assert run.config["algorithm"]["lam"] == 0.1
    assert list(run.rounds["test_accuracy"]) == [0.2, 0.1, 0.7]
    assert run.summary["rounds_to_target"] == 3


def test_group_runs_merges_seeds_and_labels_by_differing_fields(three_runs: list[Path]) -> None:
    # Prepare
    runs = [load_run(p) for p in reversed(three_runs)]

    # Execute
    groups = group_runs(runs)

    # Assert: only lam differs (seed and results_dir are ignored); runs sorted by seed inside a group
    assert list(groups) == ["fedref lam=0.1", "fedref lam=1.0"]
    assert [r.seed for r in groups["fedref lam=0.1"]] == [0, 1]
    assert [r.path.name for r in groups["fedref lam=1.0"]] == ["c"]


def test_group_runs_sorts_numbers_numerically_and_labels_algorithm_alone(tmp_path: Path) -> None:
    # Prepare: lam 10.0 would sort before 2.0 as text; seeds of one config get just the algorithm name
    acc = {"accuracy": [0.1], "forgetting": [0.0], "drops": [0]}
    lams = [make_run(tmp_path / f"l{lam}", lam=lam, **acc) for lam in (10.0, 2.0)]
    seeds = [make_run(tmp_path / f"s{s}", algorithm="fedavg", seed=s, **acc) for s in (3, 1)]

    # Execute
    by_lam = group_runs([load_run(p) for p in lams])
    by_seed = group_runs([load_run(p) for p in seeds])

    # Assert
    assert list(by_lam) == ["fedref lam=2.0", "fedref lam=10.0"]
    assert list(by_seed) == ["fedavg"] and [r.seed for r in by_seed["fedavg"]] == [1, 3]


def test_summary_table_says_how_many_runs_reached_the_target(tmp_path: Path) -> None:
    # Prepare: seed 0 reaches 0.5 at round 2 (4 MB, 200 samples), seed 1 never does
    a = make_run(tmp_path / "a", seed=0, accuracy=[0.4, 0.5], forgetting=[0.0, 0.0], drops=[0, 0])
    b = make_run(tmp_path / "b", seed=1, accuracy=[0.4, 0.3], forgetting=[0.0, 0.1], drops=[0, 1])

    # Execute
    table = summary_table(group_runs([load_run(a), load_run(b)]))

    # Assert
    row = table.splitlines()[2]
    assert "| 2.0 (1/2 reached) | 4.000 (1/2 reached) | 200 (1/2 reached) |" in row
    assert row.startswith("| fedref | 2 (0, 1) | 0.4000 ± 0.1414 | 0.4500 ± 0.0707 |")


def test_write_report_writes_plots_and_hand_computed_table(three_runs: list[Path], tmp_path: Path) -> None:
    # Prepare
    out = tmp_path / "out"

    # Execute
    written = write_report([str(p) for p in three_runs], out)

    # Assert: lam=0.1 final accuracies 0.6, 0.7: mean 0.65, sample std 0.1/sqrt(2) = 0.0707; rounds to
    # target 2, 3 -> 2.5; MB 4, 6 -> 5; samples 200, 300 -> 250; forgetting 0.05, 0.1 -> 0.075 ± 0.0354;
    # drops 0, 1 -> 0.5 ± 0.7071. lam=1.0 is one run, so no ± and the target is not reached.
    assert written == out
    for name in ("accuracy.png", "forgetting.png", "accuracy_vs_bytes.png"):
        assert png_size(out / name) == (600, 400)
        assert (out / name).stat().st_size > 10_000
    lines = (out / "report.md").read_text().splitlines()
    assert "Target accuracy: 0.5" in lines
    assert (
        "| fedref lam=0.1 | 2 (0, 1) | 0.6500 ± 0.0707 | 0.6500 ± 0.0707 | 2.5 | 5.000 | 250 "
        "| 0.0750 ± 0.0354 | 0.5 ± 0.7 |"
    ) in lines
    assert (
        "| fedref lam=1.0 | 1 (0) | 0.3000 | 0.3000 | not reached (0/1) | not reached (0/1) "
        "| not reached (0/1) | 0.0200 | 0.0 |"
    ) in lines
    assert sum(line.startswith("| fedref") for line in lines) == 2


def test_write_report_is_deterministic_and_defaults_beside_the_first_run(three_runs: list[Path]) -> None:
    # Execute
    first = write_report(three_runs, None)
    text = (first / "report.md").read_text()
    second = write_report(list(reversed(three_runs)), None)

    # Assert: default is <first dir>/../report; the order of the folders given changes nothing
    assert first == three_runs[0].parent / "report"
    assert second == three_runs[2].parent / "report" == first
    assert (second / "report.md").read_text() == text
    assert text.count("| fedref lam=") == 2


@pytest.mark.parametrize("missing", REPORT_FILES)
def test_missing_file_raises_naming_it_and_writes_nothing(three_runs: list[Path], tmp_path: Path, missing: str) -> None:
    # Prepare
    (three_runs[2] / missing).unlink()
    out = tmp_path / "out"

    # Execute / Assert
    with pytest.raises(UserError, match=rf"'{three_runs[2]}'.*{missing}"):
        write_report(three_runs, out)
    assert not out.exists()


def test_unreadable_file_raises_user_error(three_runs: list[Path], tmp_path: Path) -> None:
    # Prepare
    (three_runs[0] / "rounds.parquet").write_text("not parquet")

    # Execute / Assert
    with pytest.raises(UserError, match=rf"'{three_runs[0]}'.*rounds.parquet is unreadable"):
        write_report(three_runs, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_report_end_to_end(three_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    out = tmp_path / "cli-out"

    # Execute
    ok = main(["report", *map(str, three_runs), "--out", str(out)])
    ok_output = capsys.readouterr().out
    bad = main(["report", str(three_runs[0]), str(tmp_path / "nope")])
    bad_error = capsys.readouterr().err

    # Assert
    assert ok == 0 and f"report written to {out}" in ok_output
    assert "| fedref lam=0.1 | 2 (0, 1) |" in (out / "report.md").read_text()
    assert bad == 2 and "nope" in bad_error and "Traceback" not in bad_error
    assert not (tmp_path / "report").exists()


def test_runs_of_different_algorithms_and_lengths_plot_together(tmp_path: Path) -> None:
    # Prepare: seed 1 stopped after one round, so round 2 of its group averages the other seed alone
    runs = [
        make_run(tmp_path / "x", algorithm="fedavg", accuracy=[0.2, 0.6], forgetting=[0.0, 0.0], drops=[0, 0]),
        make_run(tmp_path / "y", algorithm="fedavg", seed=1, accuracy=[0.4], forgetting=[0.0], drops=[0]),
        make_run(tmp_path / "z", accuracy=[0.3, 0.4], forgetting=[0.0, 0.1], drops=[0, 0]),
    ]

    # Execute
    out = write_report(runs, tmp_path / "out")

    # Assert
    text = (out / "report.md").read_text()
    assert "| fedavg | 2 (0, 1) | 0.5000 ± 0.1414 |" in text
    assert "| fedref | 1 (0) | 0.4000 |" in text
    assert png_size(out / "accuracy_vs_bytes.png") == (600, 400)
