"""FedProx paper (Li et al. 2020) Synthetic(1,1) straggler study: 3 straggler levels x 3 methods.

    RAY_AUTH_MODE=disabled python experiments/fedprox_synthetic/run_study.py [--rounds 200] [--seeds 0]
        [--out experiments/fedprox_synthetic/results/rounds.parquet]

Methods (as in the authors' plot_final_e20.py): FedAvg drops stragglers; FedProx mu=0 and
FedProx mu=1 keep their partial work. Every run uses base.yaml, the local engine and 1 torch
thread, one run at a time. Runs already in the parquet are skipped; the parquet is rewritten
after every run, so the study can be run in pieces. Then: python experiments/fedprox_synthetic/report.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import pandas as pd  # noqa: E402

from fedref_ray import api  # noqa: E402

HERE = Path(__file__).resolve().parent
BASE = HERE / "base.yaml"
DEFAULT_OUT = HERE / "results" / "rounds.parquet"
STRAGGLERS = (0.0, 0.5, 0.9)
METHODS = {  # label: overrides
    "FedAvg": ["algorithm.name=fedavg", "system.straggler_policy=drop"],
    "FedProx mu=0": ["algorithm.name=fedprox", "algorithm.mu=0.0", "system.straggler_policy=partial"],
    "FedProx mu=1": ["algorithm.name=fedprox", "algorithm.mu=1.0", "system.straggler_policy=partial"],
}
COLUMNS = ["stragglers", "method", "seed", "round", "test_accuracy", "test_loss", "train_loss",
           "clients_reported", "samples", "wall_seconds", "run_seconds"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seeds", default="0", help="comma-separated run seeds (data seed stays 0)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    table = pd.read_parquet(args.out) if args.out.exists() else pd.DataFrame(columns=COLUMNS)
    for seed in (int(s) for s in args.seeds.split(",")):
        for frac in STRAGGLERS:
            for method, extra in METHODS.items():
                done = table[(table.stragglers == frac) & (table.method == method) & (table.seed == seed)]
                if len(done) == args.rounds:
                    continue
                table = table.drop(done.index)
                with tempfile.TemporaryDirectory() as tmp:
                    overrides = [*extra, f"system.straggler_fraction={frac}", f"run.seed={seed}",
                                 f"run.rounds={args.rounds}", f"run.results_dir={tmp}/run"]  # fmt: skip
                    began = time.perf_counter()
                    api.run(str(BASE), overrides)
                    took = time.perf_counter() - began
                    rounds = pd.read_parquet(Path(tmp) / "run" / "rounds.parquet")
                rows = rounds[["round", "test_accuracy", "test_loss", "train_loss", "clients_reported",
                               "samples", "wall_seconds"]].copy()  # fmt: skip
                rows.insert(0, "seed", seed)
                rows.insert(0, "method", method)
                rows.insert(0, "stragglers", frac)
                rows["run_seconds"] = took
                table = pd.concat([table, rows[COLUMNS]], ignore_index=True) if len(table) else rows[COLUMNS]
                args.out.parent.mkdir(parents=True, exist_ok=True)
                table.to_parquet(args.out, index=False)
                last = rows.iloc[-1]
                print(
                    f"{frac:.0%} {method}: acc {last.test_accuracy:.4f} loss {last.test_loss:.4f} in {took:.0f}s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
