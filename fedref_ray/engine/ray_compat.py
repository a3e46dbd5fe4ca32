"""Every call whose form depends on the Ray version, in one place (STYLE.md: Ray at the edge)."""

from __future__ import annotations

import os
import socket
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

from fedref_ray.config import EngineConfig
from fedref_ray.errors import EngineLost, EngineTimeout, UserError

WORKER_RESTARTS = 3
# Retry a worker's task until the worker is given up for good (after WORKER_RESTARTS restarts) or
# engine.timeout_s runs out. A finite count is not enough: while a lost node is not yet declared
# dead (GCS health checks, ~15 s by default), every retry fails at once with "actor unavailable",
# so 3 retries were spent in seconds and the round failed before the actor was restarted.
WORKER_TASK_RETRIES = -1


# At most this long to reach a cluster's port before ray.init (less when engine.timeout_s is less).
CONNECT_PROBE_S = 30.0
RAY_CLIENT_PORT = 10001


def _probe_target(address: str, where: str) -> tuple[str, int]:
    """(host, port) that ray.init will dial for `address`: auto found on this machine, or host:port as given."""
    from ray._private import services  # version-dependent: kept here

    if address.startswith("ray://"):
        host, _, port = address[len("ray://") :].rpartition(":")
        host, port = (host, port) if host else (port, str(RAY_CLIENT_PORT))
    else:
        try:
            resolved = services.canonicalize_bootstrap_address_or_die(address)
        except ConnectionError:
            raise UserError(
                f"{where}: no running Ray cluster was found on this machine; start one with "
                "`ray start --head`, give its host:port, or leave engine.address empty for a private local Ray"
            ) from None
        except ValueError:
            raise UserError(
                f"{where} is not an address: use host:port (a cluster's GCS, port 6379 by default), "
                f"ray://host:{RAY_CLIENT_PORT}, auto, or an empty value for a private local Ray"
            ) from None
        host, _, port = resolved.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise UserError(
            f"{where} is not an address: use host:port, ray://host:{RAY_CLIENT_PORT}, auto or an empty value"
        ) from None


def _probe(address: str, where: str, timeout_s: float) -> None:
    """Fail in bounded time, with one line naming `where` the address came from, when nothing listens there."""
    host, port = _probe_target(address, where)
    deadline = min(timeout_s, CONNECT_PROBE_S)
    try:
        with socket.create_connection((host, port), timeout=deadline):
            pass
    except OSError as exc:
        why = f"no answer within {deadline:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or repr(exc))
        raise UserError(
            f"{where}: cannot reach a Ray cluster at {host}:{port} ({why}); check "
            "that the cluster is running (`ray status` there), the host and port (GCS 6379, Ray client 10001 by "
            "default) and any firewall, or leave engine.address empty for a private local Ray"
        ) from None


def connect(cfg: EngineConfig, runtime_env: dict[str, Any] | None = None) -> bool:
    """Join Ray (engine.address, else RAY_ADDRESS as under `ray job submit`), or start a private local one.

    Returns True when this process connected (and so must shut Ray down). A local start
    uses address="local" so that a `ray start` cluster elsewhere on the machine is never joined by accident.
    Joining first checks, within min(engine.timeout_s, CONNECT_PROBE_S), that something listens at the
    address, so a wrong address fails with one line instead of a hang or a ConnectionError traceback.
    """
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if runtime_env:  # the user's own modules, uploaded once for the whole job (only ray.init can upload)
        kwargs["runtime_env"] = runtime_env
    address = cfg.address or os.environ.get("RAY_ADDRESS", "")
    if address and address != "local":
        where = f"engine.address={address!r}" if cfg.address else f"RAY_ADDRESS={address!r}"
        _probe(address, where, cfg.timeout_s)
        # Ray retries the GCS for ~20 s (one try a second) when something else answers on the port; bound it
        # by engine.timeout_s too, unless the operator set Ray's own budget.
        os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(max(1, int(min(cfg.timeout_s, 20)))))
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, TimeoutError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"{where}: Ray could not connect ({first}); check that a Ray cluster of this Ray version "
                "runs there and that RAY_AUTH_MODE matches the cluster's"
            ) from None
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
    except RayActorError:
        lost = [n for r, n in zip(refs, names) if _lost(r)]
        raise EngineLost(
            f"{what}: {', '.join(lost) or 'a worker'} was lost for good (restarted up to {WORKER_RESTARTS} times, "
            "then its process or node died again, or it was killed)"
        ) from None


def _lost(ref: Any) -> bool:
    try:
        ray.get(ref, timeout=0)
    except RayActorError:
        return True
    except Exception:  # noqa: BLE001 - any other outcome is not this worker's loss
        return False
    return False


def get_one(ref: Any, name: str, timeout_s: float) -> Any:
    """ray.get of one call with a deadline; a dead actor, or one of our errors raised inside it, as one line."""
    try:
        return ray.get(ref, timeout=timeout_s)
    except GetTimeoutError:
        raise EngineTimeout(f"{name} did not answer within engine.timeout_s={timeout_s:g} s") from None
    except RayActorError:
        raise EngineLost(f"the {name} actor was lost (its process or node died, or it was killed)") from None
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, (EngineLost, EngineTimeout, UserError)):  # raised inside the actor: its message alone
            raise type(cause)(str(cause)) from None
        raise


def kill_quietly(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - the actor may already be gone
        pass
