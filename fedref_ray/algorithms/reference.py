"""FedRef's reference model and Bayesian fine-tuning step, as pure functions (METHOD.md, server step 3).

Kept apart from the algorithm class so the closed forms can be tested on hand-computed vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedref_ray.params import Params, combine


def reference_weights(num_models: int, weighting: str) -> list[float]:
    """omega_i for the history newest first: linear gives (rho - i + 1) / Phi, uniform 1 / rho."""
    if num_models < 1:
        raise ValueError("the reference needs at least one past global model")
    if weighting == "uniform":
        return [1.0 / num_models] * num_models
    phi = num_models * (num_models + 1) / 2
    return [(num_models - i) / phi for i in range(num_models)]


def reference_model(history: Sequence[Params], weighting: str) -> Params:
    """theta_ref = sum_i omega_i * H[i] over the models that exist (newest first)."""
    return combine(zip(reference_weights(len(history), weighting), history))


def shrinkage(lam: float, eta_s: float) -> float:
    """s = 2 lam eta_s / (1 + 2 lam eta_s): how far the MAP estimate moves toward the prior's mean."""
    return 2 * lam * eta_s / (1 + 2 * lam * eta_s)


def fine_tune(aggregate: Params, prior_mean: Params, lam: float, eta_s: float, step: str) -> Params:
    """Minimise ||theta - theta_bar||^2 / (2 eta_s) + lam ||theta - prior_mean||^2.

    `closed_form` returns the exact minimiser (1 - s) theta_bar + s prior_mean; `gradient` takes
    the reference code's single gradient step, (1 - 2 lam eta_s) theta_bar + 2 lam eta_s prior_mean.
    Both priors of METHOD.md reduce to this with the right `prior_mean`.
    """
    s = shrinkage(lam, eta_s) if step == "closed_form" else 2 * lam * eta_s
    return combine([(1 - s, aggregate), (s, prior_mean)])


def delta_prior_mean(previous_global: Params, reference: Params, previous_reference: Params) -> Params:
    """theta_{r-1} + theta_ref_{r-1} - theta_ref_{r-2}: the 'delta' prior's mean (the reference's last move)."""
    return combine([(1.0, previous_global), (1.0, reference), (-1.0, previous_reference)])
