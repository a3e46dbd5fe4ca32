"""The client pool on Ray actors, as the server actor sees it.

Kept free of torch imports: the server actor unpickles this class, and it never
touches a model, so it starts without paying torch's import.
"""

from __future__ import annotations

import numpy as np
import ray

from fedref_ray.aggregation import PartialSum
from fedref_ray.engine import ray_compat
from fedref_ray.metrics import Evaluation, summarize
from fedref_ray.params import Params
from fedref_ray.system import ClientTask, RoundWork


def balance(tasks: list[ClientTask], num_bins: int) -> list[list[ClientTask]]:
    """Deal tasks to workers by sample count, largest first to the least-loaded worker (deterministic)."""
    bins: list[list[ClientTask]] = [[] for _ in range(num_bins)]
    load = np.zeros(num_bins)
    for task in sorted(tasks, key=lambda t: (-t.num_samples, t.client_id)):
        i = int(np.argmin(load))
        bins[i].append(task)
        load[i] += task.num_samples
    return bins


class RayPool:
    """The client pool on Ray actors; waits are bounded by `timeout_s` and end in an error naming who did not answer."""

    def __init__(self, workers: list, names: list[str], num_test: int, timeout_s: float) -> None:
        self.workers, self.names, self.num_test, self.timeout_s = workers, names, num_test, timeout_s

    def train(
        self,
        work: RoundWork,
        start: Params,
        broadcast: dict[str, Params],
        tasks: list[ClientTask],
        states: dict[int, dict[str, np.ndarray]],
    ) -> list[PartialSum]:
        """The model and broadcast go into the object store once; each worker gets its own clients' states."""
        start_ref = ray.put(start)
        broadcast_ref = ray.put(broadcast)
        calls, names = [], []
        for worker, name, share in zip(self.workers, self.names, balance(tasks, len(self.workers))):
            if share:
                mine = {t.client_id: states[t.client_id] for t in share if t.client_id in states}
                calls.append(worker.train.remote(work, start_ref, broadcast_ref, share, mine))
                names.append(name)
        return ray_compat.get_all(calls, names, self.timeout_s, what=f"round {work.round}")

    def evaluate(self, params: Params) -> Evaluation:
        """Every worker evaluates a contiguous slice of the test set; counts are merged in worker order."""
        ref = ray.put(params)
        bounds = np.linspace(0, self.num_test, len(self.workers) + 1).astype(int)
        calls = [w.evaluate.remote(ref, int(lo), int(hi)) for w, lo, hi in zip(self.workers, bounds[:-1], bounds[1:])]
        return summarize(ray_compat.get_all(calls, self.names, self.timeout_s, what="evaluation"))
