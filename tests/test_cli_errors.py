"""The CLI's error battery: every user mistake exits 2 with ONE stderr line naming the field, never a traceback.

Runs `fedref_ray.cli.main` in-process (stderr captured by capsys); one test runs the installed console script.
Every run is pinned to the in-process engine, one round and a temporary results folder, so that a
mistake the CLI failed to catch would still finish quickly instead of starting Ray.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedref_ray.cli import main

SCRIPT = Path(sys.executable).parent / "fedref-ray"

# A small, fast, valid base: synthetic tabular data, logreg, 5 iid clients.
SMALL = [
    "data.name=synthetic",
    "data.synthetic_users=5",
    "data.synthetic_max_samples=20",
    "partition.name=iid",
    "partition.num_clients=5",
    "run.clients_per_round=2",
    "model.name=logreg",
]


def _run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, items: list[str], config: Path | None = None
) -> tuple[int, str]:
    """main(['run', '--quiet', CONFIG?, <safe base>, *items]); return (exit code, stderr)."""
    base = ["engine.name=local", "run.rounds=1", f"run.results_dir={tmp_path / 'out'}"]
    argv = ["run", "--quiet", *([str(config)] if config is not None else []), *base, *items]
    code = main(argv)
    return code, capsys.readouterr().err


def _assert_one_line_naming(code: int, err: str, field: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("fedref-ray: error: "), err
    assert field in lines[0], err
    assert "Traceback" not in err


# (overrides after the safe base, the field the message must name)
BAD_OVERRIDES = [
    (["algorithm.name=fedprox", "algorithm.mu=-1"], "algorithm.mu"),
    (["algorithm.name=fedref", "algorithm.lam=abc"], "algorithm.lam"),
    (["algorithm.name=fedref", "algorithm.rho=0"], "algorithm.rho"),
    (["algorithm.name=fedfoo"], "algorithm.name"),
    (["algorithm.name=fedref", "algorithm.eta_s=0"], "algorithm.eta_s"),
    (["algorithm.name=fedref", "algorithm.gate_delta=[0.1]"], "algorithm.gate_delta"),
    (["algorithm.name=fedavg", "algorithm.mu=0.5"], "algorithm.mu"),
    (["algorithm.name=no_such_module:Algo"], "algorithm.name"),
    (["algorithm.name=fedref_ray.config:ExperimentConfig"], "algorithm.name"),
    (["model.name=no_such_module:build"], "model.name"),
    (["model.name=fedref_ray.models:no_such_builder"], "model.name"),
    (["data.name=no.such.module:load"], "data.name"),
    (["data.name=arrays"], "data.path"),
    (["partition.alpha=0"], "partition.alpha"),
    (["partition.num_clients=50", "run.clients_per_round=100"], "run.clients_per_round"),
    (["run.clients_per_round=100"], "run.clients_per_round"),
    (["data.name=mnist"], "data.root"),
    (["data.name=cifar10", "data.root=/nonexistent"], "data.root"),
    (["training.lr=0"], "training.lr"),
    (["training.batch_size=-3"], "training.batch_size"),
    (["engine.num_workers=0"], "engine.num_workers"),
    (["engine.gpus_per_worker=-0.5"], "engine.gpus_per_worker"),
    (["system.availability=0"], "system.availability"),
    (["system.faulty_fraction=1.5"], "system.faulty_fraction"),
    (["model.name=vgg"], "model.name"),
    (["algorithm.foo=1"], "algorithm.foo"),
    (["foo.bar=1"], "foo"),
    (["algorithm.mu"], "algorithm.mu"),
    (["algorithm.mu=0.1.2.3", "algorithm.rho=three"], "algorithm.mu"),
    (["partition.name=natural", "data.name=mnist5k"], "partition.name"),
    (["run.rounds=0"], "run.rounds"),
    (["run.seed=-5"], "run.seed"),
]


@pytest.mark.parametrize(("items", "field"), BAD_OVERRIDES, ids=[" ".join(i) for i, _ in BAD_OVERRIDES])
def test_bad_override_exits_2_with_one_line(
    items: list[str], field: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Prepare / Execute
    code, err = _run(capsys, tmp_path, items)
    # Assert
    _assert_one_line_naming(code, err, field)
    assert not (tmp_path / "out").exists()


def test_lone_malformed_override_is_read_as_a_missing_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    """`fedref-ray run algorithm.mu`: the first item without '=' is the config path; the message still names it."""
    # Prepare / Execute
    code = main(["run", "algorithm.mu"])
    # Assert
    _assert_one_line_naming(code, capsys.readouterr().err, "algorithm.mu")


def test_invalid_yaml_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "broken.yaml"
    path.write_text("algorithm:\n  mu: [0.1, 0.2\nrun:\n  rounds: 3\n")
    # Execute
    code, err = _run(capsys, tmp_path, [], config=path)
    # Assert
    _assert_one_line_naming(code, err, "broken.yaml")


def test_yaml_file_that_is_a_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "list.yaml"
    path.write_text("- algorithm: {mu: 0.1}\n- run: {rounds: 3}\n")
    # Execute
    code, err = _run(capsys, tmp_path, [], config=path)
    # Assert
    _assert_one_line_naming(code, err, "list.yaml")


def test_config_path_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "nowhere" / "exp.yaml"
    # Execute
    code, err = _run(capsys, tmp_path, [], config=path)
    # Assert
    _assert_one_line_naming(code, err, "exp.yaml")


def test_bad_value_inside_the_yaml_file_names_the_dotted_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Prepare
    path = tmp_path / "exp.yaml"
    path.write_text("algorithm:\n  name: fedref\n  rho: -2\n")
    # Execute
    code, err = _run(capsys, tmp_path, [], config=path)
    # Assert
    _assert_one_line_naming(code, err, "algorithm.rho")


def test_unknown_key_inside_the_yaml_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "exp.yaml"
    path.write_text("training:\n  learning_rate: 0.1\n")
    # Execute
    code, err = _run(capsys, tmp_path, [], config=path)
    # Assert
    _assert_one_line_naming(code, err, "training.learning_rate")


def test_model_that_does_not_fit_the_data_fails_after_loading(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """femnist_cnn needs (C, H, W) images; synthetic data is (N, 60) tabular: caught when theta_0 is built."""
    # Prepare
    items = [*SMALL, "model.name=femnist_cnn"]
    # Execute
    code, err = _run(capsys, tmp_path, items)
    # Assert
    _assert_one_line_naming(code, err, "model.name")
    assert not (tmp_path / "out").exists()


AFTER_LOADING = [
    (["partition.num_clients=500"], "partition.num_clients"),
    (["partition.name=shards", "partition.classes_per_client=50"], "partition.classes_per_client"),
    (["model.hidden=10"], "model.hidden"),
]


@pytest.mark.parametrize(("items", "field"), AFTER_LOADING, ids=[" ".join(i) for i, _ in AFTER_LOADING])
def test_mistakes_found_after_loading_the_data(
    items: list[str], field: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """These only show once the data is loaded (partition sizes, model vs data); still one line, no folder made."""
    # Prepare / Execute
    code, err = _run(capsys, tmp_path, [*SMALL, *items])
    # Assert
    _assert_one_line_naming(code, err, field)
    assert not (tmp_path / "out").exists()


def test_negative_data_seed_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare / Execute
    code, err = _run(capsys, tmp_path, [*SMALL, "data.seed=-1"])
    # Assert
    _assert_one_line_naming(code, err, "data.seed")


def test_non_empty_results_folder_is_left_untouched(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare
    folder = tmp_path / "old-run"
    (folder / "sub").mkdir(parents=True)
    keep = {folder / "notes.txt": b"my notes\x00\xff\n", folder / "sub" / "summary.json": b'{"rounds": 3}\n'}
    for path, content in keep.items():
        path.write_bytes(content)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    # Execute
    code, err = _run(capsys, tmp_path, [*SMALL, f"run.results_dir={folder}"])
    # Assert
    _assert_one_line_naming(code, err, "run.results_dir")
    assert "--overwrite" in err
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    for path, content in keep.items():
        assert path.read_bytes() == content


def test_results_dir_that_is_a_file_is_left_untouched(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare
    target = tmp_path / "results.txt"
    target.write_bytes(b"not a folder\n")
    # Execute
    code, err = _run(capsys, tmp_path, [*SMALL, f"run.results_dir={target}"])
    # Assert
    _assert_one_line_naming(code, err, "run.results_dir")
    assert target.read_bytes() == b"not a folder\n"


def test_overrides_after_an_option_are_still_overrides(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare
    argv = ["run", "engine.name=local", "--quiet", "algorithm.name=fedprox", "algorithm.mu=-1"]
    argv.append(f"run.results_dir={tmp_path / 'out'}")
    # Execute
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0) + 1000  # argparse exited on its own: not the one-line UserError path
    # Assert
    _assert_one_line_naming(code, capsys.readouterr().err, "algorithm.mu")


def test_installed_console_script_exits_2_without_a_traceback(tmp_path: Path) -> None:
    # Prepare
    assert SCRIPT.is_file(), SCRIPT
    argv = [str(SCRIPT), "run", "engine.name=local", f"run.results_dir={tmp_path / 'out'}", "algorithm.name=fedprox"]
    argv.append("algorithm.mu=-1")
    # Execute
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # Assert
    _assert_one_line_naming(proc.returncode, proc.stderr, "algorithm.mu=-1")
    assert proc.stdout == ""


# Issue 16: exposure, extreme timeouts, config files and results folders that cannot be used.
MORE_BAD_OVERRIDES = [
    (["engine.dashboard_host=0.0.0.0"], "engine.dashboard_public=true"),
    (["engine.dashboard_host=192.168.1.5", "engine.dashboard=true"], "no authentication"),
    (["engine.dashboard_public=maybe"], "engine.dashboard_public"),
    (["engine.timeout_s=0.5"], "engine.timeout_s"),
    (["engine.timeout_s=1e300"], "engine.timeout_s"),
    (["engine.timeout_s=.nan"], "engine.timeout_s"),
]


@pytest.mark.parametrize(("items", "field"), MORE_BAD_OVERRIDES, ids=[" ".join(i) for i, _ in MORE_BAD_OVERRIDES])
def test_more_bad_overrides_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, items: list[str], field: str
) -> None:
    # Execute
    code, err = _run(capsys, tmp_path, [*SMALL, *items])
    # Assert
    _assert_one_line_naming(code, err, field)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_a_loopback_dashboard_host_needs_no_opt_in(capsys: pytest.CaptureFixture[str], tmp_path: Path, host: str):
    # Execute: a one-round local run (the dashboard setting only matters to a Ray engine)
    code, err = _run(capsys, tmp_path, [*SMALL, f"engine.dashboard_host={host}"])
    # Assert
    assert code == 0, err


def test_a_public_dashboard_host_with_the_opt_in_is_accepted(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    # Execute
    code, err = _run(capsys, tmp_path, [*SMALL, "engine.dashboard_host=0.0.0.0", "engine.dashboard_public=true"])
    # Assert
    assert code == 0, err


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\x00\x01\xff\xfebinary", "not a text file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        (b"run:\n  rounds: 2\n  seed: 1\n  rounds: 3\n", "'rounds' appears twice (again at line 4)"),
        (b"run: {rounds: 2}\nrun: {seed: 1}\n", "'run' appears twice"),
    ],
    ids=["binary", "png", "duplicate key", "duplicate section"],
)
def test_a_binary_or_ambiguous_config_file_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, said: str
) -> None:
    # Prepare
    config = tmp_path / "exp.yaml"
    config.write_bytes(content)
    # Execute
    code, err = _run(capsys, tmp_path, SMALL, config=config)
    # Assert
    _assert_one_line_naming(code, err, str(config))
    assert said in err


def _unusable_results_dirs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("x\n")
    return {
        "name too long": tmp_path / ("x" * 300),
        "under a file": tmp_path / "a-file" / "out",
        "not writable": Path("/sys/fedref-ray-test/out"),  # refused even to root (the tests may run as root)
    }


@pytest.mark.parametrize("case", ["name too long", "under a file", "not writable"])
def test_a_results_folder_that_cannot_be_created_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    # Prepare
    folder = _unusable_results_dirs(tmp_path)[case]
    # Execute
    code, err = _run(capsys, tmp_path, [*SMALL, f"run.results_dir={folder}"])
    # Assert
    _assert_one_line_naming(code, err, "run.results_dir")
    assert "cannot be created" in err
    assert (tmp_path / "a-file").read_text() == "x\n"


def test_a_results_folder_that_exists_but_is_read_only_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Prepare: a folder this process cannot write (skipped as root, who may write anywhere)
    if os.geteuid() == 0:
        pytest.skip("root may write into a read-only folder")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        # Execute
        code, err = _run(capsys, tmp_path, [*SMALL, f"run.results_dir={folder}"])
    finally:
        folder.chmod(0o700)
    # Assert
    _assert_one_line_naming(code, err, "run.results_dir")
    assert "not writable" in err


def test_huge_finite_updates_are_rejected_counted_and_the_model_stays_sane(tmp_path: Path) -> None:
    """Issue 16: noise of std 1e30 on half the clients is finite but absurd; max_update_ratio (1000 by default)
    rejects those updates, rounds.parquet counts them, and the model keeps a sane size."""
    import numpy as np
    import pandas as pd

    from fedref_ray.cli import main as run_main

    # Prepare
    out = tmp_path / "noise"
    argv = ["run", "--quiet", "engine.name=local", "data.name=digits", "model.name=mlp", "partition.num_clients=10",
            "run.clients_per_round=5", "run.rounds=3", "system.faulty_fraction=0.5", "system.fault_kind=noise",
            "system.fault_noise_std=1e30", f"run.results_dir={out}"]  # fmt: skip
    # Execute
    code = run_main(argv)
    # Assert
    rounds = pd.read_parquet(out / "rounds.parquet")
    with np.load(out / "model.npz") as model:
        largest = max(float(np.abs(model[k]).max()) for k in model.files)
    assert code == 0
    assert rounds["clients_rejected"].sum() > 0
    assert (rounds["clients_rejected"] + rounds["clients_reported"] == 5).all()
    assert largest < 10.0


def test_a_diverging_run_is_warned_about_in_its_summary(tmp_path: Path) -> None:
    """training.lr=100 diverges: summary.json records one warning instead of a silent exit 0."""
    import json

    from fedref_ray.cli import main as run_main

    # Prepare
    out = tmp_path / "lr100"
    argv = ["run", "--quiet", "engine.name=local", "data.name=digits", "model.name=mlp", "partition.num_clients=10",
            "run.clients_per_round=5", "run.rounds=4", "training.lr=100", f"run.results_dir={out}"]  # fmt: skip
    # Execute
    code = run_main(argv)
    # Assert
    warnings = json.loads((out / "summary.json").read_text())["warnings"]
    assert code == 0 and len(warnings) == 1 and "diverg" in warnings[0]


def test_a_worker_pool_that_cannot_fit_in_memory_is_refused_up_front(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue 16: 200 workers of 0.01 CPU each import torch (~350 MiB): refused with the estimate before Ray starts."""
    # Execute
    code, err = _run(
        capsys, tmp_path, [*SMALL, "engine.name=ray", "engine.num_workers=200", "engine.cpus_per_worker=0.01"]
    )
    # Assert
    _assert_one_line_naming(code, err, "engine.num_workers")
    assert "GiB" in err
