"""The scaling-study report (experiments/scaling/report.py) is deterministic and has its projection; no Ray."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

REPORT = Path(__file__).resolve().parent.parent / "experiments" / "scaling" / "report.py"


def _load_report():
    spec = importlib.util.spec_from_file_location("scaling_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _row(dataset, total, k, workers, model, steady, busy, model_bytes=2440):
    return {
        "dataset": dataset,
        "total_clients": total,
        "per_round": k,
        "workers": workers,
        "model": model,
        "rounds": 3,
        "steady_s_per_round": steady,
        "steady_median_s": steady,
        "round1_s": steady * 1.5,
        "server_s_per_round": steady * 0.9,
        "startup_s": 10.0,
        "end_to_end_s": 12.0,
        "peak_rss_mib": 2800.0 + total / 100,
        "peak_pss_mib": 1700.0 + total / 200,
        "samples_per_round": 16.0 * k,
        "client_busy_s_per_round": busy,
        "model_bytes": model_bytes,
        "final_accuracy": 0.5,
        "load_avg": 2.0,
        "load_before": 2.0,
        "when_utc": "2026-01-01T00:00:00Z",
    }


def _fake_parquet(path: Path) -> None:
    rows = []
    for w in (1, 2):
        for total in (100, 1000):
            for k in (10, 100, 1000):
                if k <= total:
                    rows.append(_row("synthetic", total, k, w, "logreg", 0.02 + k * 0.0005 / w, k * 0.0004))
    rows.append(_row("mnist5k", 1000, 100, 2, "femnist_cnn", 1.4, 2.0, 13_000_000))
    rows.append(_row("mnist5k", 1000, 100, 2, "logreg", 0.1, 0.1, 31_400))
    # Written in a shuffled order: the report must sort.
    pd.DataFrame(rows[::-1]).to_parquet(path, index=False)


def test_report_is_deterministic_and_has_projection(tmp_path: Path) -> None:
    report = _load_report()
    parquet = tmp_path / "scaling.parquet"
    _fake_parquet(parquet)
    out1, out2 = tmp_path / "a", tmp_path / "b"
    md1 = report.main(["--parquet", str(parquet), "--out", str(out1)]).read_text()
    md2 = report.main(["--parquet", str(parquet), "--out", str(out2)]).read_text()
    assert md1 == md2
    for png in ("s_per_round.png", "peak_pss.png", "models.png"):
        assert (out1 / png).read_bytes() == (out2 / png).read_bytes()
    assert "## Projection to a cluster of N nodes x W workers" in md1
    assert "Assumptions:" in md1
    assert "linear in workers" in md1
    assert "no network cost" in md1
    assert "Projected seconds per round, W = 16 workers per node" in md1
    assert "femnist_cnn" in md1 and "13,000,000" in md1
    # Per-worker throughput at the largest per-round setting (1,000): 1000 / (0.02 + 0.5/2) / 2 = 1,852 clients/s.
    assert "| 1,000 | 1,000 | 2 | 0.270 | 1,852 |" in md1
    assert report.render(pd.read_parquet(parquet), pngs=None) == report.render(pd.read_parquet(parquet), pngs=None)
