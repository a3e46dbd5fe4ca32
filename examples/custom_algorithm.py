"""An algorithm that is not built in, defined outside the package: FedAvgM (Hsu, Qi and Brown 2019).

The server keeps a momentum buffer v of the pseudo-gradient d = theta_bar - theta and steps
theta <- theta + server_lr * v with v <- beta * v + d (beta = 0, server_lr = 1 is FedAvg). The
config names the class by import path and sets its own coefficient like any built-in's:

    python examples/custom_algorithm.py      # Ray engine, 2 workers, about 20 s on 2 cores

Ray ships this module to the workers (runtime_env py_modules), so the same line works on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import fedref_ray
from fedref_ray import Aggregate, Algorithm, ServerUpdate


@dataclass(frozen=True)
class FedAvgMParams:
    """beta: server momentum; server_lr: the server's step on the momentum."""

    beta: float = 0.9
    server_lr: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.beta < 1:
            raise ValueError(f"beta={self.beta!r} is not allowed: a number in [0, 1)")
        if not self.server_lr > 0:
            raise ValueError(f"server_lr={self.server_lr!r} is not allowed: a number > 0")


@dataclass(frozen=True)
class FedAvgMState:
    """The server's momentum buffer (float64, one array per parameter)."""

    velocity: dict[str, np.ndarray]


class FedAvgM(Algorithm):
    """Only the server half differs from FedAvg: momentum on the averaged update."""

    name = "fedavgm"
    Params = FedAvgMParams
    coefficients = ("beta", "server_lr")

    def init_state(self, model):
        return FedAvgMState({k: np.zeros(v.shape) for k, v in model.items()})

    def server_update(self, model, state: FedAvgMState, aggregate: Aggregate) -> ServerUpdate:
        p = self.params
        velocity = {k: p.beta * state.velocity[k] + (aggregate.model[k] - model[k]) for k in model}
        new_model = {k: (model[k] + p.server_lr * velocity[k]).astype(np.float32) for k in model}
        return ServerUpdate(new_model, FedAvgMState(velocity), step_applied=True)


def main() -> None:
    result = fedref_ray.run(
        {
            "data": {"name": "digits"},
            "partition": {"name": "dirichlet", "num_clients": 20, "alpha": 0.5},
            "model": {"name": "mlp", "hidden": 64},
            "training": {"lr": 0.1, "batch_size": 16, "local_epochs": 2},
            "engine": {"name": "ray", "num_workers": 2},
            "run": {"rounds": 10, "clients_per_round": 5},
        },
        ["algorithm.name=custom_algorithm:FedAvgM", "algorithm.beta=0.5"],
        overwrite=True,
    )
    print(f"FedAvgM (beta 0.5) on digits: final accuracy {result.summary['final_accuracy']:.4f}")
    print(result.rounds[["round", "test_accuracy", "train_loss"]].to_string(index=False))


if __name__ == "__main__":
    main()
