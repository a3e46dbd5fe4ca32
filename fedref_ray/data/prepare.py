"""From config to data: load the source, partition it over clients, and check the two agree."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fedref_ray.config import DataConfig, ExperimentConfig, PartitionConfig
from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.data.federated import FederatedData
from fedref_ray.data.validate import dataset_from_arrays
from fedref_ray.errors import UserError
from fedref_ray.imports import first_line, is_import_path, load_object
from fedref_ray.seeding import rng_for


def load_dataset(cfg: DataConfig) -> DatasetArrays:
    """The arrays of `data.name` (sources import lazily, so only the one used is loaded)."""
    if is_import_path(cfg.name):
        return load_user_dataset(cfg.name)
    if cfg.name == "arrays":
        from fedref_ray.data.sources.arrays import load_arrays

        return load_arrays(str(cfg.path))
    if cfg.name == "synthetic":
        from fedref_ray.data.sources.synthetic import load_synthetic

        return load_synthetic(
            alpha=cfg.synthetic_alpha,
            beta=cfg.synthetic_beta,
            num_users=cfg.synthetic_users,
            seed=cfg.seed,
            iid=cfg.synthetic_iid,
            max_samples=cfg.synthetic_max_samples,
            test_fraction=cfg.test_fraction,
        )
    if cfg.name == "digits":
        from fedref_ray.data.sources.digits import load_digits

        return load_digits(seed=cfg.seed, test_fraction=cfg.test_fraction)
    if cfg.name == "mnist5k":
        from fedref_ray.data.sources.mnist5k import load_mnist5k

        return load_mnist5k(num_train=cfg.num_train, num_test=cfg.num_test)
    root = str(Path(str(cfg.root)).expanduser())
    if cfg.name in ("mnist", "fashion_mnist", "cifar10"):
        from fedref_ray.data.sources import torchvision_sets

        return {"mnist": torchvision_sets.load_mnist, "fashion_mnist": torchvision_sets.load_fashion_mnist,
                "cifar10": torchvision_sets.load_cifar10}[cfg.name](root)  # fmt: skip
    if cfg.name == "cinic10":
        from fedref_ray.data.sources.cinic10 import load_cinic10

        return load_cinic10(root)
    from fedref_ray.data.sources.femnist import load_femnist

    return load_femnist(root)


def load_user_dataset(name: str) -> DatasetArrays:
    """Call the user's loader (no arguments): it returns DatasetArrays, or a mapping with x_train, y_train,
    x_test, y_test and optionally client_ids; either way the arrays are validated like `data.name=arrays`."""
    loader = load_object("data.name", name)
    try:
        got = loader()
    except Exception as exc:  # noqa: BLE001 - the user's loader failed: one line naming it
        raise UserError(f"data.name={name!r} failed: {type(exc).__name__}: {first_line(exc)}") from None
    if isinstance(got, DatasetArrays):
        got = {"x_train": got.x_train, "y_train": got.y_train, "x_test": got.x_test, "y_test": got.y_test,
               "client_ids": got.train_client_ids}  # fmt: skip
    if not isinstance(got, Mapping):
        raise UserError(f"data.name={name!r} returned a {type(got).__name__}, not DatasetArrays or a mapping of arrays")
    return dataset_from_arrays(f"data.name={name!r}", got)


def partition_dataset(arrays: DatasetArrays, cfg: PartitionConfig, seed: int) -> list[np.ndarray]:
    """Split the training set over clients with `partition.name`, seeded from the run seed."""
    from fedref_ray.data import partition as P

    rng = rng_for(seed, "partition")
    n = len(arrays.y_train)
    if cfg.name == "natural":
        if arrays.train_client_ids is None:
            raise UserError(f"partition.name='natural' needs natural client ids, which data.name='{arrays.name}' lacks")
        return P.natural_partition(arrays.train_client_ids, cfg.num_clients, rng)
    k = int(cfg.num_clients)  # validated non-null for every other partitioner
    if cfg.name == "iid":
        return P.iid_partition(n, k, rng)
    if cfg.name == "dirichlet":
        return P.dirichlet_partition(arrays.y_train, k, cfg.alpha, rng)
    if cfg.name == "shards":
        return P.shards_partition(arrays.y_train, k, cfg.classes_per_client, rng)
    return P.quantity_partition(n, k, rng, exponent=cfg.quantity_exponent)


def prepare_data(cfg: ExperimentConfig) -> tuple[DatasetArrays, FederatedData]:
    """Load and partition; fail with a UserError before any training if the two don't fit the config."""
    arrays = load_dataset(cfg.data)
    parts = partition_dataset(arrays, cfg.partition, cfg.run.seed)
    if cfg.run.clients_per_round > len(parts):
        raise UserError(
            f"run.clients_per_round={cfg.run.clients_per_round} is not allowed: at most the {len(parts)} clients "
            f"that partition.name={cfg.partition.name} produced"
        )
    return arrays, FederatedData.from_partition(arrays.x_train, arrays.y_train, parts)
