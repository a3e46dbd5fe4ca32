"""System heterogeneity, FedScale-style: per-client speed and bandwidth, availability, deadline, faults.

`plan_round` turns the sampled clients into the tasks that actually run (who
responds, how much work each may do, which are faulty) and the simulated round
duration, before any training, so every engine runs the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedref_ray.config import SystemConfig
from fedref_ray.seeding import derive_seed, rng_for

Fault = Literal["none", "stale", "noise", "nan"]


@dataclass(frozen=True)
class ClientProfiles:
    """Speed (samples/s) and bandwidth (bytes/s) of every client, drawn once from the run seed."""

    speed: np.ndarray
    bandwidth: np.ndarray

    @classmethod
    def draw(cls, cfg: SystemConfig, num_clients: int, seed: int) -> ClientProfiles:
        rng = rng_for(seed, "profile")
        speed = cfg.speed_median * np.exp(cfg.speed_sigma * rng.standard_normal(num_clients))
        bandwidth = cfg.bandwidth_median * 1e6 * np.exp(cfg.bandwidth_sigma * rng.standard_normal(num_clients))
        return cls(speed=speed, bandwidth=bandwidth)

    def completion_time(self, client: int, samples: int, bytes_moved: int) -> float:
        """Seconds to download, train on `samples` and upload: compute plus bytes over bandwidth."""
        return samples / self.speed[client] + bytes_moved / self.bandwidth[client]


@dataclass(frozen=True)
class ClientTask:
    """One client's work in one round; `max_samples` caps partial work, `fault` injects METHOD.md's drift."""

    client_id: int
    num_samples: int
    train_seed: int
    max_samples: int | None = None
    fault: Fault = "none"
    fault_seed: int = 0


@dataclass(frozen=True)
class RoundWork:
    """What all of a round's clients share besides the models: the round and each client's traffic."""

    round: int
    bytes_down: int
    bytes_up: int


@dataclass(frozen=True)
class RoundPlan:
    """The tasks to run, the clients that never answered, and the simulated duration of the round."""

    tasks: tuple[ClientTask, ...]
    unavailable: tuple[int, ...]
    dropped: tuple[int, ...]
    sim_seconds: float


# Stragglers draw from the "fault" purpose on client slots past any real client id, so their
# stream never meets the fault draws (client = cid) and adds no purpose to fedref_ray.seeding.
_STRAGGLER_STREAM = 1 << 62


def straggler_epochs(
    round_: int, responding: list[int], local_epochs: int, fraction: float, seed: int
) -> dict[int, int]:
    """The stragglers among this round's responding clients and the epochs each completes.

    Follows the FedProx authors' code (litian96/FedProx, flearn/trainers/fedprox.py): of the m
    clients that respond, round(m * (1 - fraction)) chosen uniformly do the full E epochs, the
    others are stragglers, each completing np.random.randint(1, E) epochs, i.e. a uniform integer
    in [1, E-1]. With E = 1 a straggler completes 0 epochs (so is always dropped). Python's
    round() is the authors' too (round half to even: 10 clients at 50 % gives 5 stragglers).
    """
    if fraction <= 0 or not responding:
        return {}
    num_active = round(len(responding) * (1 - fraction))
    order = rng_for(seed, "fault", round_, _STRAGGLER_STREAM).permutation(len(responding))
    slow = sorted(responding[i] for i in order[num_active:])
    return {
        cid: int(rng_for(seed, "fault", round_, _STRAGGLER_STREAM + 1 + cid).integers(1, local_epochs))
        if local_epochs > 1
        else 0
        for cid in slow
    }


def plan_round(
    round_: int,
    sampled: np.ndarray,
    sizes: np.ndarray,
    local_epochs: int,
    bytes_down: int,
    bytes_up: int,
    cfg: SystemConfig,
    profiles: ClientProfiles,
    seed: int,
) -> RoundPlan:
    """Decide, from seeds only, what each sampled client does this round.

    Order: availability, then stragglers (`straggler_fraction`, dropped or kept with partial
    work by `straggler_policy`), then the deadline on what is left, then faults. A dropped
    client (straggler or past the deadline) is listed in `dropped`; its time still counts.
    """
    tasks, unavailable, dropped, times = [], [], [], []
    responding = []
    for cid in (int(c) for c in sampled):
        if cfg.availability < 1 and rng_for(seed, "available", round_, cid).random() >= cfg.availability:
            unavailable.append(cid)
            continue
        responding.append(cid)
    straggling = straggler_epochs(round_, responding, local_epochs, cfg.straggler_fraction, seed)
    for cid in responding:
        work = int(sizes[cid]) * local_epochs
        budget = None
        if cid in straggling:
            epochs = straggling[cid]
            if cfg.straggler_policy == "drop" or epochs < 1:
                dropped.append(cid)
                times.append(profiles.completion_time(cid, work, bytes_down + bytes_up))
                continue
            work = budget = int(sizes[cid]) * epochs
        duration = profiles.completion_time(cid, work, bytes_down + bytes_up)
        if cfg.deadline_s is not None and duration > cfg.deadline_s:
            comm = profiles.completion_time(cid, 0, bytes_down + bytes_up)
            budget = min(int((cfg.deadline_s - comm) * profiles.speed[cid]), work)
            if cfg.deadline_policy == "drop" or budget < 1:
                dropped.append(cid)
                times.append(cfg.deadline_s)
                continue
            duration = profiles.completion_time(cid, budget, bytes_down + bytes_up)
        fault: Fault = "none"
        if cfg.faulty_fraction > 0 and rng_for(seed, "fault", round_, cid).random() < cfg.faulty_fraction:
            fault = cfg.fault_kind
        tasks.append(
            ClientTask(
                client_id=cid,
                num_samples=int(sizes[cid]),
                train_seed=derive_seed(seed, "train", round_, cid),
                max_samples=budget,
                fault=fault,
                fault_seed=derive_seed(seed, "noise", round_, cid),
            )
        )
        times.append(duration)
    return RoundPlan(tuple(tasks), tuple(unavailable), tuple(dropped), float(max(times, default=0.0)))
