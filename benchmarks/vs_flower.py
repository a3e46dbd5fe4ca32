"""fedref-ray's Ray engine against Flower's Simulation Runtime on the same workload (W1, W2).

Flower pins its own Ray, so it runs in its own virtual environment (benchmarks/.flower-venv,
created on first use with `python3 -m venv` and pip). This script exports the workload (train
and test arrays, client index lists, initial model, each round's sampled clients and shuffle
seeds) to a temporary .npz that benchmarks/flower_workload.py loads, so both systems train
the same clients on the same minibatches with the same network. Each system runs as its own
subprocess, one after the other; prints per-round and end-to-end times and the ratios.
Figures only; nothing is asserted. Usage:

    RAY_AUTH_MODE=disabled python benchmarks/vs_flower.py [--workload W1|W2|both] [--rounds N] [--setup-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from workloads import REPO, build, workload_names  # noqa: E402

VENV = HERE / ".flower-venv"
FLOWER_PY = VENV / "bin" / "python"


def ensure_flower_venv() -> Path:
    """The Flower venv's python, created and filled on first use (flwr[simulation], torch, fedref-ray --no-deps)."""
    probe = [str(FLOWER_PY), "-c", "import flwr, ray, torch, fedref_ray.models"]
    if FLOWER_PY.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return FLOWER_PY
    import torch

    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    if not FLOWER_PY.exists():
        print(f"creating {VENV} ...", flush=True)
        subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(VENV)], check=True)
    print(f"installing flwr[simulation] and {torch_pin} into {VENV} (a few minutes the first time) ...", flush=True)
    pip = [str(FLOWER_PY), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "flwr[simulation]", torch_pin], check=True)
    # Only for fedref_ray.models (torch only): the same network definition, none of our dependencies.
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", str(REPO)], check=True)
    subprocess.run(probe, check=True)
    return FLOWER_PY


def export_workload(name: str, rounds: int | None, path: Path) -> dict:
    """Write everything that defines the workload to `path`; return the fields the report needs."""
    from fedref_ray.data.prepare import prepare_data
    from fedref_ray.engine import initial_params
    from fedref_ray.seeding import derive_seed, sample_clients

    cfg = build(name, rounds=rounds)
    arrays, data = prepare_data(cfg)
    start = initial_params(cfg, arrays.input_shape, arrays.num_classes)
    seed, k, m, r_total = cfg.run.seed, data.num_clients, cfg.run.clients_per_round, cfg.run.rounds
    sampled = np.stack([sample_clients(seed, r, k, m) for r in range(1, r_total + 1)])
    seeds = np.array(
        [[derive_seed(seed, "train", r + 1, int(c)) for c in row] for r, row in enumerate(sampled)], np.int64
    )
    tr = cfg.training
    np.savez(
        path,
        x_train=data.x,
        y_train=data.y,
        x_test=arrays.x_test,
        y_test=arrays.y_test,
        offsets=data.offsets,
        indices=data.indices,
        sampled=sampled,
        seeds=seeds,
        param_names=np.array(list(start)),
        **{f"param:{n}": v for n, v in start.items()},
        lr=tr.lr,
        batch_size=tr.batch_size,
        local_epochs=tr.local_epochs,
        eval_batch_size=tr.eval_batch_size,
        num_classes=arrays.num_classes,
        rounds=r_total,
        num_clients=k,
        model_name=cfg.model.name,
        hidden=-1 if cfg.model.hidden is None else cfg.model.hidden,
        input_shape=np.array(arrays.input_shape),
    )
    sizes = data.sizes
    return {"cfg": cfg, "samples_per_round": [int(sizes[row].sum()) for row in sampled]}


def run_flower(py: Path, npz: Path, cpus: int, log: Path) -> dict:
    """Flower as a subprocess of the Flower venv's python; wall time measured here."""
    out = npz.with_suffix(".flower.json")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "FLWR_TELEMETRY_ENABLED": "0", "PYTHONPATH": str(HERE)}
    # Flower calls ray.init() without an address, which joins the latest `ray start` cluster on the
    # machine if there is one (a test's, another user's); "local" always starts a private one.
    env.setdefault("RAY_ADDRESS", "local")
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(
            [str(py), str(HERE / "flower_workload.py"), str(npz), str(out), "--cpus", str(cpus)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(HERE),
        )
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"Flower run failed (exit {proc.returncode}); see {log}")
    res = json.loads(out.read_text())
    end = {int(r): t for r, t in res["stamps"]["eval_end"].items()}
    rounds = [end[r] - end[r - 1] for r in range(1, max(end) + 1)]
    return {
        "wall_s": wall,
        "round_s": rounds,
        "final_accuracy": res["accuracy"][str(max(end))],
        "first_round_done_s": end[1],
        "versions": f"flwr {res['flwr_version']}, ray {res['ray_version']}, torch {res['torch_version']}",
    }


def run_ours(name: str, rounds: int | None, log: Path) -> dict:
    """fedref-ray's Ray engine (2 workers) through engine_overhead.py in a subprocess; wall time measured here."""
    cmd = [sys.executable, str(HERE / "engine_overhead.py"), "--workload", name, "--engines", "ray", "--json"]
    if rounds is not None:
        cmd += ["--rounds", str(rounds)]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    log.write_text(proc.stdout + proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"fedref-ray run failed (exit {proc.returncode}); see {log}")
    res = json.loads(lines[-1])
    import ray

    return {
        "wall_s": wall,
        "round_s": res["round_s"],
        "final_accuracy": res["final_accuracy"],
        "startup_in_run_s": res["startup_s"],
        "versions": f"ray {ray.__version__}",
    }


def report(name: str, cfg: object, samples: list[int], flower: dict, ours: dict, loads: list[str]) -> None:
    print(
        f"\n== {name}: {cfg.partition.num_clients} clients, {cfg.run.clients_per_round} per round, "  # type: ignore[attr-defined]
        f"{cfg.run.rounds} rounds, {cfg.model.name}, mnist5k dirichlet(0.5), 1 epoch, batch 32, lr 0.05, FedAvg"
    )  # type: ignore[attr-defined]
    print(f"   samples trained per round (identical clients and minibatches in both): {samples}")
    print(f"   Flower: {flower['versions']} (run_simulation, message API, client_resources num_cpus=1 -> 2 actors)")
    print(f"   fedref-ray: {ours['versions']} (engine.name=ray, 2 workers x 1 CPU)")
    print(
        f"   {'system':<14}{'round 1 s':>11}{'steady s/round':>16}{'median':>9}{'fixed s':>10}"
        f"{'end-to-end s':>14}{'final acc':>11}"
    )
    rows = {}
    for label, res in (("Flower", flower), ("fedref-ray", ours)):
        steady = res["round_s"][1:] or res["round_s"]
        mean = statistics.fmean(steady)
        fixed = res["wall_s"] - mean * len(res["round_s"])
        rows[label] = (mean, res["wall_s"])
        print(
            f"   {label:<14}{res['round_s'][0]:>11.3f}{mean:>16.3f}{statistics.median(steady):>9.3f}"
            f"{fixed:>10.2f}{res['wall_s']:>14.2f}{res['final_accuracy']:>11.4f}"
        )
    (f_round, f_e2e), (o_round, o_e2e) = rows["Flower"], rows["fedref-ray"]
    print(f"   ours faster by: {f_round / o_round:.2f}x per steady round, {f_e2e / o_e2e:.2f}x end to end")
    print(
        "   steady = mean of rounds 2..N (driver side, evaluation included); end-to-end = subprocess wall time"
        " (interpreter, imports, data, Ray start and shutdown included);\n"
        "   fixed = end-to-end - rounds x steady"
    )
    print(f"   load average (1/5/15 min) before Flower, before ours, after: {' | '.join(loads)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("W1", "W2", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=None, help="override run.rounds for both systems")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs Flower's Ray may use (1 per client)")
    parser.add_argument("--setup-only", action="store_true", help="create the Flower venv and exit")
    parser.add_argument("--logs", default=None, help="keep both systems' logs in this folder")
    args = parser.parse_args()
    py = ensure_flower_venv()
    if args.setup_only:
        print(f"Flower venv ready: {py}")
        return
    with tempfile.TemporaryDirectory(prefix="fedref-vs-flower-") as tmp:
        logs = Path(args.logs) if args.logs else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for name in workload_names(args.workload):
            npz = Path(tmp) / f"{name}.npz"
            meta = export_workload(name, args.rounds, npz)
            load = lambda: "/".join(f"{x:.2f}" for x in os.getloadavg())  # noqa: E731
            loads = [load()]
            flower = run_flower(py, npz, args.cpus, logs / f"{name}.flower.log")
            print(f"   [{name} Flower done in {flower['wall_s']:.1f} s]", file=sys.stderr, flush=True)
            loads.append(load())
            ours = run_ours(name, args.rounds, logs / f"{name}.fedref.log")
            print(f"   [{name} fedref-ray done in {ours['wall_s']:.1f} s]", file=sys.stderr, flush=True)
            loads.append(load())
            report(name, meta["cfg"], meta["samples_per_round"], flower, ours, loads)


if __name__ == "__main__":
    main()
