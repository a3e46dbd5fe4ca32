"""The sweep report on a hand-made trials.parquet: seeds grouped, mean ± std by hand, plots against alpha and mu."""

from __future__ import annotations

import pandas as pd
import pytest

from fedref_ray.cli import main
from fedref_ray.errors import UserError
from fedref_ray.tune.sweep_report import write_sweep_report

# (algorithm, mu, alpha, seed) -> accuracy per round (3 rounds); target accuracy 0.5
CURVES = {
    ("fedavg", 0.0, 0.1, 0): [0.2, 0.4, 0.5],
    ("fedavg", 0.0, 0.1, 1): [0.3, 0.5, 0.6],
    ("fedavg", 0.0, 1.0, 0): [0.5, 0.7, 0.8],
    ("fedavg", 0.0, 1.0, 1): [0.4, 0.6, 0.8],
    ("fedprox", 0.01, 0.1, 0): [0.2, 0.3, 0.4],
    ("fedprox", 0.01, 0.1, 1): [0.2, 0.3, 0.2],
    ("fedprox", 0.1, 0.1, 0): [0.1, 0.2, 0.3],
    ("fedprox", 0.1, 0.1, 1): [0.1, 0.6, 0.3],
}


def write_trials(folder) -> None:
    rows = []
    for i, ((alg, mu, alpha, seed), accs) in enumerate(CURVES.items()):
        for r, acc in enumerate(accs, start=1):
            rows.append({
                "trial_id": f"t{i}", "status": "TERMINATED", "stopped_early": False, "results_dir": f"/runs/t{i}",
                "algorithm.name": alg, "algorithm.mu": mu, "algorithm.lam": 0.1, "partition.alpha": alpha,
                "run.seed": seed, "run.rounds": 3, "run.target_accuracy": 0.5,
                "round": r, "test_accuracy": acc, "forgetting": 0.1 * seed, "bytes_total": 1_000_000 * r,
            })  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "trials.parquet")


def table_rows(report: str) -> dict[str, list[str]]:
    lines = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| group")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """One hand-made sweep and its report (drawing takes seconds: done once)."""
    sweep = tmp_path_factory.mktemp("sweep")
    write_trials(sweep)
    return write_sweep_report(sweep)


def test_table_groups_seeds_with_mean_and_std(report_dir):
    # Execute
    rows = table_rows((report_dir / "report.md").read_text())
    # Assert: fedavg alpha=0.1 finals 0.5, 0.6 -> 0.55 ± 0.0707 (sample std); first rounds >= 0.5: 3 and 2 -> 2.5
    assert set(rows) == {"fedavg alpha=0.1", "fedavg alpha=1", "fedprox mu=0.01", "fedprox mu=0.1"}
    assert rows["fedavg alpha=0.1"][:4] == ["2 (0, 1)", "0.5500 ± 0.0707", "0.5500 ± 0.0707", "2.5"]
    assert rows["fedavg alpha=1"][1] == "0.8000 ± 0.0000"
    assert rows["fedprox mu=0.01"][3] == "not reached (0/2)"
    assert rows["fedprox mu=0.1"][2:4] == ["0.4500 ± 0.2121", "2.0 (1/2 reached)"]  # best 0.3 and 0.6
    assert rows["fedavg alpha=0.1"][4] == "0.0500 ± 0.0707"  # final forgetting 0.0 and 0.1
    assert rows["fedavg alpha=0.1"][5] == "3.00 ± 0.00"  # MB sent after 3 rounds


def test_plots_against_alpha_and_mu_are_drawn(report_dir):
    for name in ("accuracy_per_round.png", "vs_alpha.png", "vs_mu.png"):
        assert (report_dir / name).stat().st_size > 10_000
        assert f"]({name})" in (report_dir / "report.md").read_text()
    assert not (report_dir / "vs_lam.png").exists()  # lam is not swept


def test_cli_report_dispatches_to_the_sweep_report(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    write_trials(sweep)
    assert main(["report", str(sweep), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.md").is_file()
    assert "report written to" in capsys.readouterr().out


def test_cli_report_refuses_a_sweep_among_other_folders(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    write_trials(sweep)
    assert main(["report", str(sweep), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "one sweep folder at a time" in err and "\n" not in err


def test_missing_column_is_a_user_error(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    pd.DataFrame({"trial_id": ["a"], "round": [1]}).to_parquet(sweep / "trials.parquet")
    with pytest.raises(UserError, match="test_accuracy"):
        write_sweep_report(sweep)
