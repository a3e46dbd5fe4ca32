"""The Flower side of flower_crosscheck.py; run by the Flower venv's python, not by this project's.

    python benchmarks/flower_strategies.py UPLOADS.npz SPECS.json OUT.npz

Loads the initial model and each round's client models with their sample counts, feeds them to
each named Flower strategy's `aggregate_fit` as hand-built FitRes objects (no simulation, no
network), and writes every round's returned global model to OUT.npz as `<label>__<round>__<param>`.
"""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import strategy as flower


def main(uploads_path: str, specs_path: str, out_path: str) -> None:
    logging.getLogger("flwr").setLevel(logging.ERROR)  # "No fit_metrics_aggregation_fn provided", per strategy
    data = np.load(uploads_path)
    names = [str(n) for n in data["param_names"]]
    rounds, clients = int(data["rounds"]), int(data["clients"])
    counts = data["counts"]  # rounds x clients
    initial = [data[f"init__{n}"] for n in names]
    out: dict[str, np.ndarray] = {}
    for spec in json.loads(open(specs_path).read()):
        cls = getattr(flower, spec["flower"])
        strategy = cls(initial_parameters=ndarrays_to_parameters(initial), **spec["flower_kwargs"])
        for r in range(1, rounds + 1):
            results = []
            for c in range(clients):
                arrays = [data[f"client__{r}__{c}__{n}"] for n in names]
                res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), int(counts[r - 1, c]), {})
                results.append((None, res))
            parameters, _ = strategy.aggregate_fit(server_round=r, results=results, failures=[])
            for n, arr in zip(names, parameters_to_ndarrays(parameters), strict=True):
                out[f"{spec['label']}__{r}__{n}"] = arr
                out[f"dtype__{spec['label']}__{r}__{n}"] = np.array(str(arr.dtype))
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
