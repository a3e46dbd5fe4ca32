"""Synthetic(alpha, beta): the FedProx paper's heterogeneous logistic-regression data.

Li et al. 2020, "Federated Optimization in Heterogeneous Networks", Section 5.1 and their
`data/synthetic/generate_synthetic.py`. User k draws a softmax-regression model
W_k ~ N(u_k, 1), b_k ~ N(u_k, 1) with u_k ~ N(0, alpha), and inputs x ~ N(v_k, Sigma) with
v_k ~ N(B_k, 1), B_k ~ N(0, beta), Sigma = diag(j^-1.2); labels are argmax(softmax(W_k x + b_k)).
As in the reference code, alpha and beta are standard deviations. Note that u_k shifts every
logit of a sample by the same amount, so alpha changes the models but not the labels; the label
heterogeneity comes from beta (and from the per-user noise in W_k, b_k, v_k).
"""

from __future__ import annotations

import numpy as np

from fedref_ray.data.arrays import DatasetArrays
from fedref_ray.errors import UserError

# Upper bound on float64 elements of one block's padded inputs and models (2 MB each), small
# enough for the allocator to reuse memory between blocks instead of page-faulting fresh memory.
# Blocks set the order of the draws, so changing this changes the data a seed gives.
_CHUNK_ELEMENTS = 1 << 18


def _validate(
    alpha: float,
    beta: float,
    num_users: int,
    num_features: int,
    num_classes: int,
    log_sigma: float,
    min_samples: int,
    max_samples: int | None,
    test_fraction: float,
) -> None:
    """Raise a UserError naming the first `data.*` field whose value cannot generate data."""
    checks = [
        ("alpha", alpha, alpha >= 0, ">= 0"),
        ("beta", beta, beta >= 0, ">= 0"),
        ("num_users", num_users, num_users >= 1, "an integer >= 1"),
        ("num_features", num_features, num_features >= 1, "an integer >= 1"),
        ("num_classes", num_classes, num_classes >= 2, "an integer >= 2"),
        ("log_sigma", log_sigma, log_sigma >= 0, ">= 0"),
        ("min_samples", min_samples, min_samples >= 1, "an integer >= 1"),
        ("max_samples", max_samples, max_samples is None or max_samples >= 1, "null or an integer >= 1"),
        ("test_fraction", test_fraction, 0 <= test_fraction < 1, "in [0, 1)"),
    ]
    for field, value, ok, allowed in checks:
        if not ok:
            raise UserError(f"data.{field}={value!r} is not allowed for source 'synthetic'; allowed: {allowed}")


def _user_sizes(
    rng: np.random.Generator,
    num_users: int,
    log_mean: float,
    log_sigma: float,
    min_samples: int,
    max_samples: int | None,
) -> np.ndarray:
    """Samples per user: int(lognormal(log_mean, log_sigma)) + min_samples, capped at max_samples."""
    raw = rng.lognormal(log_mean, log_sigma, num_users)
    # Clip before the int cast so a far tail value cannot overflow int64.
    sizes = np.minimum(raw, 2.0**62).astype(np.int64) + min_samples
    if max_samples is not None:
        sizes = np.minimum(sizes, max_samples)
    return sizes


def _chunks(sizes: np.ndarray, num_features: int, num_classes: int) -> list[tuple[int, int]]:
    """Split users into contiguous [start, stop) blocks whose padded inputs and models fit the budget."""
    bounds: list[tuple[int, int]] = []
    start, largest = 0, 0
    for user, size in enumerate(sizes.tolist()):
        grown = max(largest, size)
        if user > start and (user - start + 1) * num_features * (grown + num_classes) > _CHUNK_ELEMENTS:
            bounds.append((start, user))
            start, grown = user, size
        largest = grown
    bounds.append((start, len(sizes)))
    return bounds


def _generate_block(
    rng: np.random.Generator,
    sizes: np.ndarray,
    user_mean_w: np.ndarray,
    user_mean_x: np.ndarray,
    shared_model: tuple[np.ndarray, np.ndarray] | None,
    feature_std: np.ndarray,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a block of users' inputs and labels, padded to (users, largest size, ...).

    Padding lets every user's W_k x + b_k run as one batched matmul; slots at or beyond a
    user's size hold junk the caller drops. Draws happen only for real samples.
    """
    num_users, num_features = user_mean_x.shape
    if shared_model is None:
        weights = rng.standard_normal((num_users, num_features, num_classes))
        weights += user_mean_w[:, None, None]
        biases = rng.standard_normal((num_users, num_classes))
        biases += user_mean_w[:, None]
    else:
        weights = np.broadcast_to(shared_model[0], (num_users, num_features, num_classes))
        biases = np.broadcast_to(shared_model[1], (num_users, num_classes))
    longest = int(sizes.max())
    noise = rng.standard_normal((int(sizes.sum()), num_features))
    noise *= feature_std
    if (sizes == longest).all():
        padded = noise.reshape(num_users, longest, num_features)
    else:
        padded = np.zeros((num_users, longest, num_features))
        padded[np.arange(longest) < sizes[:, None]] = noise
    padded += user_mean_x[:, None, :]
    logits = np.matmul(padded, weights)
    logits += biases[:, None, :]
    # softmax is monotone, so its argmax is the argmax of the logits.
    return padded, logits.argmax(axis=2)


def load_synthetic(
    alpha: float,
    beta: float,
    num_users: int,
    seed: int,
    iid: bool = False,
    num_features: int = 60,
    num_classes: int = 10,
    log_mean: float = 4.0,
    log_sigma: float = 2.0,
    min_samples: int = 50,
    max_samples: int | None = None,
    test_fraction: float = 0.1,
) -> DatasetArrays:
    """Generate Synthetic(alpha, beta) for `num_users` users; each user's samples split train/test.

    `iid=True` gives the paper's Synthetic-IID: one shared model W, b ~ N(0, 1) and v_k = 0 for
    all users (alpha and beta unused). Train samples carry their generating user in
    `train_client_ids`; every user keeps at least one train sample, and test samples are pooled.
    A `max_samples` below `min_samples` gives every user exactly `max_samples` samples.
    """
    _validate(alpha, beta, num_users, num_features, num_classes, log_sigma, min_samples, max_samples, test_fraction)
    rng = np.random.default_rng(seed)
    sizes = _user_sizes(rng, num_users, log_mean, log_sigma, min_samples, max_samples)
    user_mean_w = alpha * rng.standard_normal(num_users)
    user_shift = beta * rng.standard_normal(num_users)
    feature_std = np.arange(1, num_features + 1, dtype=np.float64) ** -0.6  # sqrt(j^-1.2)
    shared_model = None
    if iid:
        shared_model = (rng.standard_normal((num_features, num_classes)), rng.standard_normal(num_classes))

    # Each user's first n_train samples train (samples are i.i.d. within a user), the rest test.
    num_test = np.minimum(np.floor(sizes * test_fraction).astype(np.int64), sizes - 1)
    num_train = sizes - num_test
    x_train = np.empty((int(num_train.sum()), num_features), dtype=np.float32)
    y_train = np.empty(len(x_train), dtype=np.int64)
    x_test = np.empty((int(num_test.sum()), num_features), dtype=np.float32)
    y_test = np.empty(len(x_test), dtype=np.int64)
    train_at, test_at = 0, 0
    for start, stop in _chunks(sizes, num_features, num_classes):
        block = slice(start, stop)
        if iid:
            mean_x = np.zeros((stop - start, num_features))
        else:
            mean_x = user_shift[block, None] + rng.standard_normal((stop - start, num_features))
        x, y = _generate_block(rng, sizes[block], user_mean_w[block], mean_x, shared_model, feature_std, num_classes)
        slot = np.arange(x.shape[1])[None, :]
        is_train = slot < num_train[block, None]
        is_test = ~is_train & (slot < sizes[block, None])
        train_end, test_end = train_at + int(num_train[block].sum()), test_at + int(num_test[block].sum())
        x_train[train_at:train_end], y_train[train_at:train_end] = x[is_train], y[is_train]
        x_test[test_at:test_end], y_test[test_at:test_end] = x[is_test], y[is_test]
        train_at, test_at = train_end, test_end
    return DatasetArrays(
        name="synthetic",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=num_classes,
        train_client_ids=np.repeat(np.arange(num_users, dtype=np.int64), num_train),
    )
