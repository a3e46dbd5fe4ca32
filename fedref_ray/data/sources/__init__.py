"""Data sources: one loader per module, each returning `DatasetArrays`.

Kept light on purpose: loaders that need torch or torchvision import them lazily.
"""

SOURCE_NAMES: tuple[str, ...] = (
    "synthetic",
    "digits",
    "mnist5k",
    "mnist",
    "fashion_mnist",
    "cifar10",
    "cinic10",
    "femnist",
)

NEEDS_ROOT: frozenset[str] = frozenset({"mnist", "fashion_mnist", "cifar10", "cinic10", "femnist"})
