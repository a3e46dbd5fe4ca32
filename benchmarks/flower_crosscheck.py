"""This project's server halves against Flower's strategies on the same client uploads (issue 12, item 7).

Random client models with sample counts (a 3-layer shaped model, 5 rounds, 4 clients a round) are
fed to Flower's FedAvg, FedAvgM, FedAdagrad, FedAdam and FedYogi (`aggregate_fit` with hand-built
FitRes objects; benchmarks/flower_strategies.py, run in the Flower venv of vs_flower.py) and to
this project's `server_update` with an Aggregate built by `fedref_ray.aggregation.merge` (the
n_k-weighted mean, as the server builds it). Prints, per algorithm and round, the largest absolute
difference between the two global models; FedOpt runs with `variant=flower` (expected to agree to
float32 rounding) and, for information, `variant=paper` (v_0 = tau^2, no bias correction). Figures
only; nothing is asserted. Usage:

    RAY_AUTH_MODE=disabled python benchmarks/flower_crosscheck.py [--rounds 5] [--clients 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from vs_flower import ensure_flower_venv  # noqa: E402

from fedref_ray.aggregation import PartialSum, merge  # noqa: E402
from fedref_ray.algorithms import Aggregate, FedAvg, FedAvgM, FedOpt  # noqa: E402
from fedref_ray.algorithms.fedavgm import FedAvgMParams  # noqa: E402
from fedref_ray.algorithms.fedopt import FedOptParams  # noqa: E402

SHAPES = {"fc1.weight": (8, 5), "fc1.bias": (8,), "fc2.weight": (6, 8), "fc2.bias": (6,), "out.weight": (3, 6)}
ETA, TAU, B1, B2 = 0.1, 1e-3, 0.9, 0.99  # Flower's FedAdam defaults for eta and the betas; tau as ours


def specs() -> list[dict]:
    """(label, Flower strategy and kwargs, our algorithm) with matched hyper-parameters."""
    opt = {"eta": ETA, "eta_l": 0.1, "tau": TAU}  # eta_l is client-side: stored by Flower, unused by aggregate_fit
    out = [
        {"label": "fedavg", "flower": "FedAvg", "flower_kwargs": {}, "ours": ("fedavg", None)},
        {
            "label": "fedavgm beta=0.9 lr=1",
            "flower": "FedAvgM",
            "flower_kwargs": {"server_learning_rate": 1.0, "server_momentum": 0.9},
            "ours": ("fedavgm", {"beta": 0.9, "server_lr": 1.0}),
        },
        {
            "label": "fedavgm beta=0.5 lr=0.7",
            "flower": "FedAvgM",
            "flower_kwargs": {"server_learning_rate": 0.7, "server_momentum": 0.5},
            "ours": ("fedavgm", {"beta": 0.5, "server_lr": 0.7}),
        },
    ]
    flower_kwargs = {
        "adagrad": ("FedAdagrad", opt),  # Flower fixes beta_1 = 0 for FedAdagrad, so ours runs with beta1 = 0
        "adam": ("FedAdam", {**opt, "beta_1": B1, "beta_2": B2}),
        "yogi": ("FedYogi", {**opt, "beta_1": B1, "beta_2": B2}),
    }
    for optimizer, (cls, kwargs) in flower_kwargs.items():
        beta1 = 0.0 if optimizer == "adagrad" else B1
        for variant in ("flower", "paper"):
            params = {"server_optimizer": optimizer, "server_lr": ETA, "beta1": beta1, "beta2": B2, "tau": TAU}
            out.append(
                {
                    "label": f"fed{optimizer} variant={variant}",
                    "flower": cls,
                    "flower_kwargs": kwargs,
                    "ours": ("fedopt", {**params, "variant": variant}),
                }
            )
    return out


def uploads(rounds: int, clients: int, seed: int) -> dict[str, np.ndarray]:
    """The initial model and each round's client models (around a drifting centre) and sample counts."""
    rng = np.random.default_rng(seed)
    init = {n: rng.normal(0, 0.5, s).astype(np.float32) for n, s in SHAPES.items()}
    out: dict[str, np.ndarray] = {f"init__{n}": v for n, v in init.items()}
    centre = {n: v.astype(np.float64) for n, v in init.items()}
    counts = rng.integers(5, 200, size=(rounds, clients))
    for r in range(1, rounds + 1):
        centre = {n: v + rng.normal(0, 0.1, v.shape) for n, v in centre.items()}
        for c in range(clients):
            for n, v in centre.items():
                out[f"client__{r}__{c}__{n}"] = (v + rng.normal(0, 0.05, v.shape)).astype(np.float32)
    out.update(param_names=np.array(list(SHAPES)), rounds=np.array(rounds), clients=np.array(clients), counts=counts)
    return out


def build(name: str, params: dict | None):
    if name == "fedavg":
        return FedAvg()
    if name == "fedavgm":
        return FedAvgM(FedAvgMParams(**params))
    return FedOpt(FedOptParams(**params))


def ours(spec: dict, data: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Our global model after each round: merge() of one float64 partial sum, then server_update."""
    names, rounds, clients = list(SHAPES), int(data["rounds"]), int(data["clients"])
    algo = build(*spec["ours"])
    model = {n: data[f"init__{n}"] for n in names}
    state = algo.init_state(model)
    models = []
    for r in range(1, rounds + 1):
        counts = data["counts"][r - 1]
        sums = {n: np.zeros(SHAPES[n]) for n in names}
        for c in range(clients):
            for n in names:
                sums[n] += float(counts[c]) * (data[f"client__{r}__{c}__{n}"].astype(np.float64) - model[n])
        n_total = float(counts.sum())
        part = PartialSum(sums={"delta": sums}, weights={"delta": n_total}, loss_sum=0.0, samples=n_total)
        merged = merge([part], model, {"delta": "samples"})
        agg = Aggregate(r, merged.model, {}, {}, merged.mean_loss, clients, clients)
        update = algo.server_update(model, state, agg)
        model, state = update.model, update.state
        models.append(model)
    return models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    flower_py = ensure_flower_venv()
    data = uploads(args.rounds, args.clients, args.seed)
    all_specs = specs()
    with tempfile.TemporaryDirectory() as tmp:
        up, sp, out = Path(tmp, "uploads.npz"), Path(tmp, "specs.json"), Path(tmp, "flower.npz")
        np.savez(up, **data)
        sp.write_text(json.dumps([{k: v for k, v in s.items() if k != "ours"} for s in all_specs]))
        subprocess.run([str(flower_py), str(HERE / "flower_strategies.py"), str(up), str(sp), str(out)], check=True)
        with np.load(out) as f:
            theirs = {k: f[k] for k in f.files}
    scale = max(float(np.abs(data[f"init__{n}"]).max()) for n in SHAPES)
    size = sum(int(np.prod(s)) for s in SHAPES.values())
    print(
        f"\n{args.clients} clients a round, {args.rounds} rounds, {size} parameters in {len(SHAPES)} arrays, ", end=""
    )
    print(f"|init| <= {scale:.2f}; eta={ETA}, tau={TAU}, beta1={B1}, beta2={B2}")
    print("largest |ours - Flower's| over all parameters, per round:")
    header = f"{'algorithm':<28}" + "".join(f"{'round ' + str(r):>11}" for r in range(1, args.rounds + 1))
    print(header + f"{'max':>11}  Flower dtype")
    for spec in all_specs:
        diffs = []
        for r, model in enumerate(ours(spec, data), start=1):
            d = max(
                float(np.abs(model[n].astype(np.float64) - theirs[f"{spec['label']}__{r}__{n}"]).max()) for n in SHAPES
            )
            diffs.append(d)
        dtype = str(theirs[f"dtype__{spec['label']}__{args.rounds}__{next(iter(SHAPES))}"])
        print(f"{spec['label']:<28}" + "".join(f"{d:>11.2e}" for d in diffs) + f"{max(diffs):>11.2e}  {dtype}")


if __name__ == "__main__":
    main()
