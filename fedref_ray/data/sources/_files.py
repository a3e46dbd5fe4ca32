"""Shared checks for loaders that read user-supplied files, so every failure is one clear UserError."""

from __future__ import annotations

import os
from pathlib import Path

from fedref_ray.errors import UserError


def require_root(root: str | os.PathLike[str] | None, source: str, expected: str) -> Path:
    """Return `root` as a Path, or raise a UserError naming `data.root` and the layout `source` expects."""
    if root is None or str(root) == "":
        raise UserError(f"data.root is not set; source '{source}' needs a folder holding {expected}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root={str(path)!r} is not a folder; source '{source}' expects {expected}")
    return path


def require_files(folder: Path, names: list[str], source: str) -> None:
    """Raise a UserError naming `data.root`, the folder and every missing file among `names`."""
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"data.root: {str(folder)!r} lacks {', '.join(missing)}; "
            f"source '{source}' expects the files {', '.join(names)} there"
        )


def malformed(path: Path, source: str, problem: str) -> UserError:
    """Build the UserError for a file that exists but does not hold what `source` expects."""
    return UserError(f"data.root: file {str(path)!r} is malformed for source '{source}': {problem}")
