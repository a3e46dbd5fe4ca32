"""Partitioners that split the training indices among simulated clients."""

from fedref_ray.data.partition.dirichlet import dirichlet_partition
from fedref_ray.data.partition.iid import iid_partition
from fedref_ray.data.partition.natural import natural_partition
from fedref_ray.data.partition.quantity import quantity_partition
from fedref_ray.data.partition.shards import shards_partition

PARTITION_NAMES = ("iid", "dirichlet", "shards", "quantity", "natural")

__all__ = [
    "PARTITION_NAMES",
    "dirichlet_partition",
    "iid_partition",
    "natural_partition",
    "quantity_partition",
    "shards_partition",
]
