"""Tests for the source registry constants and the package's light import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fedref_ray.config import BUILTIN_DATA, DATA_NEEDING_ROOT


def test_sources_needing_a_root_are_known_sources() -> None:
    # Assert
    assert len(set(BUILTIN_DATA)) == len(BUILTIN_DATA) == 9
    assert set(DATA_NEEDING_ROOT) == {"mnist", "fashion_mnist", "cifar10", "cinic10", "femnist"}
    assert set(DATA_NEEDING_ROOT) <= set(BUILTIN_DATA)


def test_importing_the_sources_does_not_import_torch_or_torchvision() -> None:
    # Prepare
    code = (
        "import sys\n"
        "import fedref_ray.data.sources as s\n"
        "import fedref_ray.data.sources.torchvision_sets, fedref_ray.data.sources.synthetic\n"
        "import fedref_ray.data.sources.arrays, fedref_ray.config\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'sklearn', 'PIL') if m in sys.modules))\n"
    )

    # Execute
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root)

    # Assert
    assert result.stdout.strip() == "[]"
