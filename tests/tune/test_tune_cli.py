"""`fedref-ray tune` user mistakes: one line on stderr, exit code 2, before Ray starts."""

from __future__ import annotations

import pytest

from fedref_ray.cli import main


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["tune"], "sweep file"),
        (["tune", "run.rounds=2"], "sweep file"),
        (["tune", "missing.yaml"], "missing.yaml"),
        (["tune", "experiments/tune_smoke.yaml", "algorithm.muu=1"], "algorithm.muu"),
        (["tune", "experiments/tune_smoke.yaml", "run.seed=3"], "run.seed"),
        (["tune", "--ray-num-cpus", "0", "experiments/tune_smoke.yaml"], "--ray-num-cpus"),
        (["tune", "--resume", "nowhere"], "nowhere"),
        (["tune", "--resume", "nowhere", "experiments/tune_smoke.yaml"], "--resume"),
    ],
)
def test_tune_mistakes_exit_2_with_one_line(argv, named, capsys):
    # Execute
    code = main(argv)
    # Assert
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert named in err and "\n" not in err
