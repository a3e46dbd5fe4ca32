"""fedref-ray: a Ray-based federated-learning simulator built around FedRef."""

__version__ = "0.1.0"
