"""The open research API as a user meets it: the Python API from a plain interpreter, and the examples/ scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def test_python_api_returns_dataframes_equal_to_the_parquet_files_it_wrote(tmp_path):
    """`fedref_ray.run` from `python -c`: a dict config plus overrides, rows equal to rounds/clients.parquet."""
    # Prepare
    code = (
        "import fedref_ray, pandas as pd\n"
        "cfg = {'data': {'name': 'digits'}, 'model': {'name': 'mlp', 'hidden': 16}, 'engine': {'name': 'local'}}\n"
        f"r = fedref_ray.run(cfg, ['run.rounds=2', 'partition.num_clients=8', 'run.clients_per_round=3', "
        f"'run.results_dir={tmp_path / 'run'}'])\n"
        "pd.testing.assert_frame_equal(r.rounds, pd.read_parquet(r.results_dir / 'rounds.parquet'))\n"
        "pd.testing.assert_frame_equal(r.clients, pd.read_parquet(r.results_dir / 'clients.parquet'))\n"
        "print(len(r.rounds), len(r.clients), r.summary['rounds'], len(r.params) > 0)\n"
    )
    # Execute
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=ENV, cwd=tmp_path
    )
    # Assert
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "6", "2", "True"]


def test_python_api_raises_the_clis_one_line_errors(tmp_path):
    """A bad key is a UserError whose message is the line the CLI prints; nothing is written."""
    import fedref_ray

    # Execute
    with pytest.raises(fedref_ray.UserError) as caught:
        fedref_ray.run(None, ["algorithm.name=fedavg", "algorithm.mu=0.5", f"run.results_dir={tmp_path / 'x'}"])
    # Assert
    assert "algorithm.mu" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "x").exists()


def test_python_api_takes_an_experiment_config_and_overrides(tmp_path):
    """An ExperimentConfig (e.g. from load_config) is a starting point like a YAML path."""
    import fedref_ray
    from fedref_ray.api import make_config

    # Prepare
    cfg = fedref_ray.load_config(None, ["algorithm.name=fedref", "algorithm.lam=0.5"])
    # Execute
    again = make_config(cfg, ["algorithm.rho=5", f"run.results_dir={tmp_path}"])
    # Assert
    assert (again.algorithm.params.lam, again.algorithm.params.rho) == (0.5, 5)
    assert again.run.results_dir == str(tmp_path)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("script", ["custom_algorithm.py", "custom_model.py", "custom_dataset.py"])
def test_example_runs_on_the_ray_engine_and_prints_its_final_accuracy(tmp_path, script):
    """Each example is a user's script in a fresh interpreter: its own code by import path, 2 Ray workers."""
    # Execute
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / script)], capture_output=True, text=True, timeout=300, env=ENV,
        cwd=tmp_path,
    )  # fmt: skip
    # Assert
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "final accuracy" in proc.stdout
    assert list((tmp_path / "results").iterdir()), "the run wrote no results folder"
