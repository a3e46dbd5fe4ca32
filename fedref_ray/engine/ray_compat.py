"""Every call whose form depends on the Ray version, in one place (STYLE.md: Ray at the edge)."""

from __future__ import annotations

import os
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

from fedref_ray.config import EngineConfig
from fedref_ray.errors import UserError

WORKER_RESTARTS = 3
# Retry a worker's task until the worker is given up for good (after WORKER_RESTARTS restarts) or
# engine.timeout_s runs out. A finite count is not enough: while a lost node is not yet declared
# dead (GCS health checks, ~15 s by default), every retry fails at once with "actor unavailable",
# so 3 retries were spent in seconds and the round failed before the actor was restarted.
WORKER_TASK_RETRIES = -1


class EngineTimeout(RuntimeError):
    """A Ray call did not answer in time; the message names who."""


def connect(cfg: EngineConfig) -> bool:
    """Join Ray (engine.address, else RAY_ADDRESS as under `ray job submit`), or start a private local one.

    Returns True when this process connected (and so must shut Ray down). A local start
    uses address="local" so that a `ray start` cluster elsewhere on the machine is never joined by accident.
    """
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    address = cfg.address or os.environ.get("RAY_ADDRESS", "")
    if address and address != "local":
        ray.init(address=address, **kwargs)
        return True
    ray.init(address="local", include_dashboard=cfg.dashboard, dashboard_host=cfg.dashboard_host, **kwargs)
    return True


def check_resources(cfg: EngineConfig) -> None:
    """Fail up front when the cluster cannot hold the worker pool (instead of waiting forever)."""
    if in_placement_group():
        return
    total = ray.cluster_resources()
    need_cpu = cfg.num_workers * cfg.cpus_per_worker
    need_gpu = cfg.num_workers * cfg.gpus_per_worker
    if need_cpu > total.get("CPU", 0) + 1e-9:
        raise UserError(
            f"engine.num_workers={cfg.num_workers} x engine.cpus_per_worker={cfg.cpus_per_worker} "
            f"needs {need_cpu:g} CPUs; the Ray cluster has {total.get('CPU', 0):g}"
        )
    if need_gpu > total.get("GPU", 0) + 1e-9:
        raise UserError(
            f"engine.num_workers={cfg.num_workers} x engine.gpus_per_worker={cfg.gpus_per_worker} "
            f"needs {need_gpu:g} GPUs; the Ray cluster has {total.get('GPU', 0):g}"
        )


def in_placement_group() -> bool:
    return ray.util.get_current_placement_group() is not None


def worker_options(cfg: EngineConfig) -> dict[str, Any]:
    """Resources, restart policy and placement of a client-worker actor."""
    opts: dict[str, Any] = {
        "num_cpus": cfg.cpus_per_worker,
        "num_gpus": cfg.gpus_per_worker,
        "max_restarts": WORKER_RESTARTS,
        "max_task_retries": WORKER_TASK_RETRIES,
    }
    pg = ray.util.get_current_placement_group()
    if pg is not None:  # inside a Tune trial: stay in the trial's bundles
        opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
    elif cfg.placement == "spread":
        opts["scheduling_strategy"] = "SPREAD"
    return opts


def server_options(cfg: EngineConfig) -> dict[str, Any]:
    """The server actor takes no CPU reservation, so it never blocks the workers it drives.

    Outside a placement group it runs on the driver's node: it holds the run's state and is not
    restarted, so losing any other node must not take it (or the models it puts each round) along.
    """
    opts: dict[str, Any] = {"num_cpus": 0}
    pg = ray.util.get_current_placement_group()
    if pg is not None:
        opts["scheduling_strategy"] = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
    else:
        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(current_node_id(), soft=False)
    return opts


def current_node_id() -> str:
    return ray.get_runtime_context().get_node_id()


def get_all(refs: list, names: list[str], timeout_s: float, what: str) -> list:
    """ray.get with a deadline; on timeout, name the callers that did not answer."""
    if not refs:
        return []
    ready, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    if pending:
        late = [n for r, n in zip(refs, names) if r in pending]
        raise EngineTimeout(f"{what}: {', '.join(late)} did not answer within engine.timeout_s={timeout_s:g} s")
    try:
        return ray.get(refs, timeout=timeout_s)
    except RayActorError as exc:
        raise RuntimeError(f"{what}: a worker was lost for good (max_restarts={WORKER_RESTARTS}): {exc}") from None


def get_one(ref: Any, name: str, timeout_s: float) -> Any:
    try:
        return ray.get(ref, timeout=timeout_s)
    except GetTimeoutError:
        raise EngineTimeout(f"{name} did not answer within engine.timeout_s={timeout_s:g} s") from None


def kill_quietly(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - the actor may already be gone
        pass
