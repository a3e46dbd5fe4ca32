"""The local SGD loop every client runs, and evaluation of the global model.

Both are plain functions over a torch model and numpy arrays, so the in-process
engine and the Ray workers run exactly the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from fedref_ray.config import TrainingConfig
from fedref_ray.metrics import EvalCounts

if TYPE_CHECKING:
    from fedref_ray.algorithms.base import ClientHalf


def to_float_batch(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 images become float32 in [0, 1]; float data passes through."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    t = t.to(device=device, dtype=torch.float32)
    if x.dtype == np.uint8:
        t = t / 255.0
    return t


@dataclass(frozen=True)
class LocalStats:
    """One client's local training: mean minibatch loss of F_k, samples processed, minibatches (steps) taken."""

    loss: float
    samples: int
    steps: int


def sgd_epochs(
    model: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    indices: np.ndarray,
    cfg: TrainingConfig,
    rng: np.random.Generator,
    half: ClientHalf | None = None,
    max_samples: int | None = None,
    device: torch.device | str = "cpu",
) -> LocalStats:
    """Train `model` in place for `cfg.local_epochs` epochs of minibatch SGD on the cross-entropy F_k.

    The algorithm's client half hooks in: its `loss_term` is added to the differentiated loss
    (METHOD.md: a proximal term is part of the gradient) and `after_backward` may change the
    gradients before each step. The reported loss is F_k's alone. `max_samples` stops early
    (FedProx-style partial work), cutting the last batch to fit.
    """
    device = torch.device(device)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    budget = np.inf if max_samples is None else max_samples
    losses: list[float] = []
    seen = 0
    for _ in range(cfg.local_epochs):
        order = rng.permutation(indices)
        for begin in range(0, len(order), cfg.batch_size):
            if seen >= budget:
                break
            batch = np.sort(order[begin : begin + int(min(cfg.batch_size, budget - seen))])
            xb = to_float_batch(x[batch], device)
            yb = torch.from_numpy(y[batch]).to(device)
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            total = loss
            if half is not None:
                extra = half.loss_term(logits, xb, yb)
                if extra is not None:
                    total = loss + extra
            total.backward()
            if half is not None:
                half.after_backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            seen += len(batch)
    return LocalStats(float(np.mean(losses)) if losses else float("nan"), seen, len(losses))


@torch.no_grad()
def evaluation_counts(
    model: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    device: torch.device | str = "cpu",
) -> EvalCounts:
    """Per-class hits and counts and the summed cross-entropy of the model as it is, on (x, y)."""
    device = torch.device(device)
    model.eval()
    correct = np.zeros(num_classes, dtype=np.int64)
    loss_sum = 0.0
    for begin in range(0, len(y), batch_size):
        yb_np = y[begin : begin + batch_size]
        logits = model(to_float_batch(x[begin : begin + batch_size], device))
        yb = torch.from_numpy(yb_np).to(device)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        hit = (logits.argmax(1) == yb).cpu().numpy()
        correct += np.bincount(yb_np[hit], minlength=num_classes)
    return EvalCounts(correct, np.bincount(y, minlength=num_classes).astype(np.int64), loss_sum)
