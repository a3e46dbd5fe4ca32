"""The local SGD loop every client runs, and evaluation of the global model.

Both are plain functions over a torch model and numpy arrays, so the in-process
engine and the Ray workers run exactly the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fedref_ray.config import TrainingConfig
from fedref_ray.metrics import EvalCounts, Evaluation, summarize
from fedref_ray.params import Params, load_params, params_from_model, writable


def to_float_batch(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 images become float32 in [0, 1]; float data passes through."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    t = t.to(device=device, dtype=torch.float32)
    if x.dtype == np.uint8:
        t = t / 255.0
    return t


@dataclass(frozen=True)
class LocalResult:
    """One client's training outcome: its model, mean minibatch loss of F_k, and samples processed."""

    params: Params
    loss: float
    samples: int


def sgd_epochs(
    model: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    indices: np.ndarray,
    cfg: TrainingConfig,
    rng: np.random.Generator,
    mu: float = 0.0,
    anchor: Mapping[str, torch.Tensor] | None = None,
    max_samples: int | None = None,
    device: torch.device | str = "cpu",
) -> tuple[float, int]:
    """Train `model` in place for `cfg.local_epochs` epochs of minibatch SGD on h_k = F_k + mu/2 ||theta - anchor||^2.

    The proximal term is part of the differentiated loss (METHOD.md); returns the mean
    minibatch loss of F_k alone and the samples processed. `max_samples` stops early
    (FedProx-style partial work), cutting the last batch to fit.
    """
    device = torch.device(device)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    prox_pairs = []
    if mu > 0:
        if anchor is None:
            raise ValueError("a proximal term (mu > 0) needs an anchor model")
        prox_pairs = [(p, anchor[name]) for name, p in model.named_parameters()]
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
            loss = F.cross_entropy(model(xb), yb)
            total = loss
            if prox_pairs:
                total = loss + (mu / 2) * sum(torch.sum((p - a) ** 2) for p, a in prox_pairs)
            total.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            seen += len(batch)
    return (float(np.mean(losses)) if losses else float("nan")), seen


def local_train(
    model: torch.nn.Module,
    start: Params,
    x: np.ndarray,
    y: np.ndarray,
    indices: np.ndarray,
    cfg: TrainingConfig,
    rng: np.random.Generator,
    mu: float = 0.0,
    anchor: Params | None = None,
    max_samples: int | None = None,
    device: torch.device | str = "cpu",
) -> LocalResult:
    """One client's local training from `start` with Params in and out (see `sgd_epochs`)."""
    device = torch.device(device)
    load_params(model, start)
    model.to(device)
    anchor_tensors = None
    if anchor is not None:
        anchor_tensors = {k: torch.from_numpy(writable(v)).to(device) for k, v in anchor.items()}
    loss, seen = sgd_epochs(model, x, y, indices, cfg, rng, mu, anchor_tensors, max_samples, device)
    return LocalResult(params=params_from_model(model), loss=loss, samples=seen)


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


def evaluate(
    model: torch.nn.Module,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> Evaluation:
    """Evaluate `params` on (x, y) in one piece."""
    load_params(model, params)
    model.to(device)
    return summarize([evaluation_counts(model, x, y, num_classes, batch_size, device)])
