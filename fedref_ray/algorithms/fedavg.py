"""FedAvg (McMahan et al. 2017): plain local SGD; the server takes the sample-weighted mean of the client models."""

from __future__ import annotations

from fedref_ray.algorithms.base import Algorithm


class FedAvg(Algorithm):
    """The interface's defaults are FedAvg: no coefficients, no state, nothing but the model each way."""

    name = "fedavg"
