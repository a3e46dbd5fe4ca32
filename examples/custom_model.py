"""Your own network: `model.name` names a function (input_shape, num_classes) -> torch.nn.Module.

    python examples/custom_model.py          # Ray engine, 2 workers, about 20 s on 2 cores

The function is called once per worker (and once for the initial model, seeded from run.seed),
so every engine starts from the same weights.
"""

from __future__ import annotations

from torch import nn

import fedref_ray


def tiny_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Two 3x3 convolutions and a linear head, for small images (C, H, W)."""
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * height * width, num_classes),
    )


def main() -> None:
    result = fedref_ray.run(
        {
            "data": {"name": "digits"},
            "partition": {"name": "dirichlet", "num_clients": 20, "alpha": 0.5},
            "model": {"name": "custom_model:tiny_cnn"},
            "algorithm": {"name": "fedprox", "mu": 0.01},
            "training": {"lr": 0.1, "batch_size": 16, "local_epochs": 2},
            "engine": {"name": "ray", "num_workers": 2},
            "run": {"rounds": 10, "clients_per_round": 5},
        },
        overwrite=True,
    )
    print(f"tiny_cnn with FedProx on digits: final accuracy {result.summary['final_accuracy']:.4f}")


if __name__ == "__main__":
    main()
