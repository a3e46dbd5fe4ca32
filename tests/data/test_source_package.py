"""Tests for the source registry constants and the package's light import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fedref_ray.data.sources import NEEDS_ROOT, SOURCE_NAMES


def test_sources_needing_a_root_are_known_sources() -> None:
    # Assert
    assert len(set(SOURCE_NAMES)) == len(SOURCE_NAMES) == 8
    assert NEEDS_ROOT == {"mnist", "fashion_mnist", "cifar10", "cinic10", "femnist"}
    assert NEEDS_ROOT <= set(SOURCE_NAMES)


def test_importing_the_sources_does_not_import_torch_or_torchvision() -> None:
    # Prepare
    code = (
        "import sys\n"
        "import fedref_ray.data.sources as s\n"
        "import fedref_ray.data.sources.torchvision_sets, fedref_ray.data.sources.synthetic\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'sklearn', 'PIL') if m in sys.modules))\n"
    )

    # Execute
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root)

    # Assert
    assert result.stdout.strip() == "[]"
