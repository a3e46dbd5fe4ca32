"""Model parameters as an ordered dict of numpy arrays, and the pure math on them.

Weights travel between server and clients as numpy (Ray's object store reads
numpy zero-copy; a torch state_dict would be pickled and copied).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported only where a model is touched: the server actor never loads it
    import torch

Params = dict[str, np.ndarray]


def params_from_model(model: torch.nn.Module) -> Params:
    """Copy the model's floating-point state (parameters and float buffers) to float32 numpy."""
    import torch

    return {
        name: tensor.detach().to("cpu", torch.float32).numpy().copy()
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point()
    }


def load_params(model: torch.nn.Module, params: Mapping[str, np.ndarray]) -> None:
    """Write `params` into the model in place (integer buffers are left as they are)."""
    import torch

    state = model.state_dict()
    with torch.no_grad():
        for name, value in params.items():
            target = state[name]
            target.copy_(torch.from_numpy(writable(value)).to(target.dtype))


def writable(array: np.ndarray) -> np.ndarray:
    """`array`, copied only when it is a read-only view (as arrays read from Ray's object store are)."""
    array = np.asarray(array)
    return array if array.flags.writeable else array.copy()


def num_bytes(params: Mapping[str, np.ndarray]) -> int:
    """Bytes one copy of the parameters takes on the wire (float32)."""
    return int(sum(np.asarray(v).size for v in params.values()) * 4)


def zeros_like(params: Mapping[str, np.ndarray], dtype: type = np.float64) -> Params:
    return {k: np.zeros(np.shape(v), dtype=dtype) for k, v in params.items()}


def add_scaled_(acc: Params, params: Mapping[str, np.ndarray], scale: float) -> None:
    """acc += scale * params, in place (acc is a float64 accumulator)."""
    for k, v in params.items():
        acc[k] += scale * np.asarray(v, dtype=np.float64)


def combine(terms: Iterable[tuple[float, Mapping[str, np.ndarray]]]) -> Params:
    """sum_i c_i * p_i in float64, returned as float32; the linear map every server step is made of."""
    acc: Params | None = None
    for coef, p in terms:
        if acc is None:
            acc = zeros_like(p)
        add_scaled_(acc, p, coef)
    if acc is None:
        raise ValueError("combine() needs at least one term")
    return to_float32(acc)


def to_float32(params: Mapping[str, np.ndarray]) -> Params:
    return {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}


def global_norm(params: Mapping[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.sum(np.square(v, dtype=np.float64))) for v in params.values())))


def max_abs_diff(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - b[k]))) if np.size(a[k]) else 0.0 for k in a)
