"""Data sources, partitioners and the federated dataset."""
