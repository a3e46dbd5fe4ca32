"""Tests for FedRef's reference model and fine-tuning step (METHOD.md, "The reference model" and server step 3).

Every expected number is derived by hand in the test's docstring; nothing is recomputed with the package.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedref_ray.algorithms.reference import (
    delta_prior_mean,
    fine_tune,
    reference_model,
    reference_weights,
    shrinkage,
)


def _p(*values: float) -> dict[str, np.ndarray]:
    return {"w": np.array(values, dtype=np.float32)}


# (rho, linear weights newest first): omega_i = (rho - i + 1) / Phi, Phi = rho (rho + 1) / 2.
LINEAR = [
    (1, [1.0]),  # Phi = 1
    (2, [2 / 3, 1 / 3]),  # Phi = 3
    (3, [3 / 6, 2 / 6, 1 / 6]),  # Phi = 6
    (4, [4 / 10, 3 / 10, 2 / 10, 1 / 10]),  # Phi = 10
]


@pytest.mark.parametrize(("rho", "expected"), LINEAR)
def test_linear_weights_give_the_newest_model_the_largest_weight(rho: int, expected: list[float]) -> None:
    """rho=3: Phi = 3*4/2 = 6, so omega = (3/6, 2/6, 1/6) for (theta_r, theta_{r-1}, theta_{r-2})."""
    # Prepare / Execute
    weights = reference_weights(rho, "linear")
    # Assert
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    assert weights == sorted(weights, reverse=True)


@pytest.mark.parametrize("rho", [1, 2, 3, 4])
def test_uniform_weights_are_one_over_rho(rho: int) -> None:
    """Uniform (the paper's Eq. 4): omega_i = 1 / rho for every i."""
    # Prepare / Execute
    weights = reference_weights(rho, "uniform")
    # Assert
    assert len(weights) == rho
    np.testing.assert_allclose(weights, [1.0 / rho] * rho, rtol=1e-12)


def test_weights_need_at_least_one_model() -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError):
        reference_weights(0, "linear")


def test_reference_model_linear_of_three_models() -> None:
    """H = ([6, 0], [0, 6], [12, -6]) newest first, omega = (3/6, 2/6, 1/6):
    ref = [3 + 0 + 2, 0 + 2 - 1] = [5, 1]."""
    # Prepare
    history = (_p(6, 0), _p(0, 6), _p(12, -6))
    # Execute
    ref = reference_model(history, "linear")
    # Assert
    np.testing.assert_allclose(ref["w"], [5.0, 1.0], rtol=1e-6)
    assert ref["w"].dtype == np.float32


def test_reference_model_uniform_of_four_models() -> None:
    """H = ([4], [8], [0], [-4]), omega = 1/4 each: ref = (4 + 8 + 0 - 4) / 4 = 2."""
    # Prepare
    history = (_p(4), _p(8), _p(0), _p(-4))
    # Execute
    ref = reference_model(history, "uniform")
    # Assert
    np.testing.assert_allclose(ref["w"], [2.0], rtol=1e-6)


def test_reference_model_with_fewer_models_than_rho_averages_those_that_exist() -> None:
    """Only two models exist (rho would be 3): linear over 2 models is (2/3, 1/3), so
    ref = 2/3 [3, 9] + 1/3 [0, -3] = [2, 5]; uniform over 2 gives [1.5, 3]; one model is itself."""
    # Prepare
    two = (_p(3, 9), _p(0, -3))
    # Execute
    linear = reference_model(two, "linear")
    uniform = reference_model(two, "uniform")
    single = reference_model((_p(7, -1),), "linear")
    # Assert
    np.testing.assert_allclose(linear["w"], [2.0, 5.0], rtol=1e-6)
    np.testing.assert_allclose(uniform["w"], [1.5, 3.0], rtol=1e-6)
    np.testing.assert_array_equal(single["w"], np.array([7, -1], np.float32))


def test_reference_model_combines_every_key() -> None:
    """Two keys, linear over 2: w = 2/3*3 + 1/3*0 = 2; b = 2/3*[[1],[2]] + 1/3*[[4],[-1]] = [[2],[1]]."""
    # Prepare
    newest = {"w": np.array([3.0], np.float32), "b": np.array([[1.0], [2.0]], np.float32)}
    oldest = {"w": np.array([0.0], np.float32), "b": np.array([[4.0], [-1.0]], np.float32)}
    # Execute
    ref = reference_model((newest, oldest), "linear")
    # Assert
    np.testing.assert_allclose(ref["w"], [2.0], rtol=1e-6)
    np.testing.assert_allclose(ref["b"], [[2.0], [1.0]], rtol=1e-6)


@pytest.mark.parametrize(
    ("lam", "eta_s", "expected"), [(0.0, 1.0, 0.0), (0.25, 1.0, 1 / 3), (0.5, 1.0, 0.5), (1.0, 2.0, 0.8)]
)
def test_shrinkage(lam: float, eta_s: float, expected: float) -> None:
    """s = 2 lam eta_s / (1 + 2 lam eta_s): 0.5/1.5 = 1/3, 1/2 = 0.5, 4/5 = 0.8."""
    # Prepare / Execute / Assert
    assert shrinkage(lam, eta_s) == pytest.approx(expected, rel=1e-12)


def test_fine_tune_closed_form_is_the_exact_minimiser() -> None:
    """lam = 0.25, eta_s = 1: s = 1/3, theta = 2/3 [9, 3] + 1/3 [6, 0] = [8, 2].
    Check: dJ/dtheta = (theta - bar)/eta_s + 2 lam (theta - prior) = [-1, -1] + 0.5 [2, 2] = 0."""
    # Prepare
    aggregate, prior = _p(9, 3), _p(6, 0)
    # Execute
    theta = fine_tune(aggregate, prior, lam=0.25, eta_s=1.0, step="closed_form")
    # Assert
    np.testing.assert_allclose(theta["w"], [8.0, 2.0], rtol=1e-6)


def test_fine_tune_gradient_step_is_one_step_from_the_aggregate() -> None:
    """Gradient step: theta = (1 - 2 lam eta_s) bar + 2 lam eta_s prior; lam = 0.25, eta_s = 1 gives
    0.5 [9, 3] + 0.5 [6, 0] = [7.5, 1.5]; with lam = 1, eta_s = 1: -[9, 3] + 2 [6, 0] = [3, -3] (overshoot)."""
    # Prepare
    aggregate, prior = _p(9, 3), _p(6, 0)
    # Execute
    half = fine_tune(aggregate, prior, lam=0.25, eta_s=1.0, step="gradient")
    overshoot = fine_tune(aggregate, prior, lam=1.0, eta_s=1.0, step="gradient")
    closed = fine_tune(aggregate, prior, lam=1.0, eta_s=1.0, step="closed_form")
    # Assert
    np.testing.assert_allclose(half["w"], [7.5, 1.5], rtol=1e-6)
    np.testing.assert_allclose(overshoot["w"], [3.0, -3.0], rtol=1e-6)
    # closed form with s = 2/3 stays between bar and prior: 1/3 [9, 3] + 2/3 [6, 0] = [7, 1]
    np.testing.assert_allclose(closed["w"], [7.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("step", ["closed_form", "gradient"])
def test_fine_tune_with_lam_zero_is_exactly_the_aggregate(step: str) -> None:
    # Prepare
    aggregate = _p(0.1, -7.3, 1e-5)
    prior = _p(100.0, 200.0, -300.0)
    # Execute
    theta = fine_tune(aggregate, prior, lam=0.0, eta_s=3.0, step=step)
    # Assert
    np.testing.assert_array_equal(theta["w"], aggregate["w"])


def test_delta_prior_mean() -> None:
    """theta_{r-1} + ref_{r-1} - ref_{r-2} = [7, 1] + [6, 0] - [3, -2/3] = [10, 5/3]."""
    # Prepare / Execute
    mean = delta_prior_mean(_p(7, 1), _p(6, 0), _p(3, -2 / 3))
    # Assert
    np.testing.assert_allclose(mean["w"], [10.0, 5 / 3], rtol=1e-6)
