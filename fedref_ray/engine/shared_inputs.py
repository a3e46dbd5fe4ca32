"""The run's inputs in the object store, handed to client-worker actors by name rather than by reference.

Ray logs an error for every restartable actor whose constructor takes object refs or actor handles
(ray#53727: a restart can lose such arguments). The engine keeps these objects alive for the whole
run, so workers take only this small actor's name and fetch the refs from it, at start and on
every restart. Torch-free: the actor's process imports only this module.
"""

from __future__ import annotations

from typing import Any

import ray

from fedref_ray.engine import ray_compat


class SharedInputs:
    """Holds object refs (kept inside a list, so Ray passes them through unresolved) for named lookup."""

    def __init__(self, refs: list) -> None:
        self._refs = refs

    def refs(self) -> list:
        return self._refs


def fetch(name: str, timeout_s: float) -> list[Any]:
    """The objects behind the refs that the SharedInputs actor `name` holds, read from the object store."""
    holder = ray.get_actor(name)
    return ray_compat.get_one(ray_compat.get_one(holder.refs.remote(), name, timeout_s), name, timeout_s)
