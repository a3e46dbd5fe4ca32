"""Ray failures reach the user as one line: no cluster at the address, a worker or the server actor lost.

Connection cases run the real CLI in its own process (nothing is listening at the addresses used);
lost actors are real actors on the session's real Ray, killed for good.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedref_ray.engine import ray_compat
from fedref_ray.engine.ray_compat import EngineLost

REPO = Path(__file__).resolve().parents[1]
SMALL = ["data.name=synthetic", "data.synthetic_users=5", "data.synthetic_max_samples=20", "partition.name=iid",
         "partition.num_clients=5", "run.clients_per_round=2", "model.name=logreg", "run.rounds=1",
         "engine.name=ray", "engine.timeout_s=20"]  # fmt: skip


def _gcs_running() -> bool:
    return subprocess.run(["pgrep", "-f", "gcs_server"], capture_output=True).returncode == 0


def _run_cli(tmp_path: Path, *items: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_AUTH_MODE": "disabled"}
    argv = [sys.executable, "-m", "fedref_ray.cli", "run", "--quiet", *SMALL, f"run.results_dir={tmp_path / 'out'}"]
    # The timeout only guards against the hang this test exists to rule out; it asserts no duration.
    return subprocess.run([*argv, *items], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("127.0.0.1:1", "cannot reach a Ray cluster"),
        ("ray://127.0.0.1:1", "cannot reach a Ray cluster at 127.0.0.1:1"),
        ("localhost", "is not an address"),
        ("auto", "no running Ray cluster was found"),
    ],
)
def test_joining_a_ray_that_is_not_there_is_one_line_and_exit_2(tmp_path, address, said):
    # Prepare
    if address == "auto" and _gcs_running():
        pytest.skip("a Ray runs on this machine: 'auto' would join it")
    # Execute
    done = _run_cli(tmp_path, f"engine.address={address}")
    # Assert
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("fedref-ray: error: "), done.stderr
    assert f"engine.address={address!r}" in lines[0] and said in lines[0]


def test_ray_address_from_the_environment_is_named_as_such(tmp_path):
    # Prepare
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": "127.0.0.1:1"}
    argv = [sys.executable, "-m", "fedref_ray.cli", "run", "--quiet", *SMALL, f"run.results_dir={tmp_path / 'out'}"]
    # Execute
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    # Assert
    assert done.returncode == 2 and "RAY_ADDRESS='127.0.0.1:1'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def echo_class() -> type:
    """A stand-in worker: answers with its argument, or fails inside with an EngineLost of its own.

    Defined in a function so that Ray ships it by value (workers cannot import this test module).
    """

    class Echo:
        def echo(self, value: int) -> int:
            return value

        def lose(self) -> None:
            raise EngineLost("round 3: worker-1 was lost for good")

        def die(self) -> None:
            os._exit(1)

    return Echo


@pytest.fixture
def echo_actor(ray_session):
    actor = ray_session.remote(max_restarts=0)(echo_class()).remote()
    assert ray_session.get(actor.echo.remote(1)) == 1
    return actor


def _kill_for_good(ray_session, actor) -> None:
    """The actor's process exits, and with max_restarts=0 it is not restarted; wait until Ray knows it."""
    from ray.exceptions import RayActorError

    with pytest.raises(RayActorError):
        ray_session.get(actor.die.remote())


def test_a_worker_lost_for_good_is_one_line_naming_it(ray_session, echo_actor):
    # Prepare: two workers, the second killed for good
    alive = ray_session.remote(echo_class()).remote()
    _kill_for_good(ray_session, echo_actor)
    refs = [alive.echo.remote(7), echo_actor.echo.remote(8)]
    # Execute
    with pytest.raises(EngineLost) as caught:
        ray_compat.get_all(refs, ["worker-0", "worker-1"], 60, what="round 3")
    # Assert
    message = str(caught.value)
    assert message.startswith("round 3: worker-1 was lost for good") and "\n" not in message
    assert "worker-0" not in message


def test_a_lost_server_actor_is_one_line(ray_session, echo_actor):
    # Prepare
    _kill_for_good(ray_session, echo_actor)
    # Execute
    with pytest.raises(EngineLost) as caught:
        ray_compat.get_one(echo_actor.echo.remote(1), "server", 60)
    # Assert
    assert str(caught.value).startswith("the server actor was lost") and "\n" not in str(caught.value)


def test_an_engine_error_raised_inside_an_actor_arrives_as_itself_without_ray_s_traceback(ray_session, echo_actor):
    # Execute
    with pytest.raises(EngineLost) as caught:
        ray_compat.get_one(echo_actor.lose.remote(), "server", 60)
    # Assert
    assert str(caught.value) == "round 3: worker-1 was lost for good"
