"""A model whose floating-point state lives in one flat float32 buffer.

Every parameter and float buffer is a view into that buffer, so resetting a
client to the global model is one copy, and screening and accumulating its
update are single passes: the per-client overhead that dominates when a worker
trains hundreds of small clients per round.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from fedref_ray.params import Params, writable


class FlatModel:
    """Wraps `model` in place; `flat` holds its float state in state_dict order."""

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        entries = [(k, t) for k, t in model.state_dict(keep_vars=True).items() if t.is_floating_point()]
        self.names = [k for k, _ in entries]
        self.shapes = [tuple(t.shape) for _, t in entries]
        sizes = [t.numel() for _, t in entries]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.flat = torch.empty(int(self.offsets[-1]), dtype=torch.float32, device=self.device)
        with torch.no_grad():
            for (_, tensor), lo, hi in zip(entries, self.offsets[:-1], self.offsets[1:]):
                view = self.flat[lo:hi].view_as(tensor)
                view.copy_(tensor.detach().to(torch.float32))
                tensor.data = view

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    def pack(self, params: Mapping[str, np.ndarray]) -> torch.Tensor:
        """Params (dict of arrays) to a flat float32 tensor on this model's device."""
        host = np.concatenate([np.asarray(params[k], np.float32).reshape(-1) for k in self.names])  # a fresh copy
        return torch.from_numpy(host).to(self.device)

    def to_device(self, flat: np.ndarray) -> torch.Tensor:
        """A flat float32 array (read-only ones from Ray's object store included) as a tensor on this device."""
        return torch.from_numpy(writable(np.asarray(flat, np.float32))).to(self.device)

    def unpack(self, flat: torch.Tensor) -> Params:
        """A flat tensor (any float dtype) to Params: numpy views of one host copy."""
        host = flat.detach().cpu().numpy()
        return {
            k: host[lo:hi].reshape(shape)
            for k, shape, lo, hi in zip(self.names, self.shapes, self.offsets[:-1], self.offsets[1:])
        }

    def load(self, flat: torch.Tensor) -> None:
        with torch.no_grad():
            self.flat.copy_(flat)

    def named_views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Shaped views of `flat` by name (e.g. to read an anchor model parameter by parameter)."""
        return {
            k: flat[lo:hi].view(shape)
            for k, shape, lo, hi in zip(self.names, self.shapes, self.offsets[:-1], self.offsets[1:])
        }
