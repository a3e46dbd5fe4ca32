"""Paths as written into output files: the home folder as `~`, so no file names the user's home path."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def home_as_tilde(value: Any) -> Any:
    """A string path under the home folder with the home prefix replaced by `~`; anything else unchanged.

    The same rule as `config_to_yaml` applies to config.yaml; read such a path back with `Path.expanduser`.
    """
    home = str(Path.home())
    if isinstance(value, str) and home != "/" and (value == home or value.startswith(home + "/")):
        return "~" + value[len(home) :]
    return value
