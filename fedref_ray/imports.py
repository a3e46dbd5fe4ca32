"""User code named in a config as "package.module:attribute", imported with one-line errors naming the field."""

from __future__ import annotations

import importlib
import re
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from fedref_ray.errors import UserError

_IMPORT_PATH = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")


def is_import_path(name: str) -> bool:
    """True for names of user code ("package.module:attribute"), False for built-in names."""
    return ":" in name


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_object(field: str, spec: str) -> Any:
    """The object `spec` names; a malformed path, a failing import or a missing attribute is a UserError."""
    if not _IMPORT_PATH.fullmatch(spec):
        raise UserError(
            f"{field}={spec!r} is not allowed: a built-in name or an import path 'package.module:attribute'"
        )
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is the user's to fix
        raise UserError(f"{field}={spec!r}: module '{module_name}' cannot be imported ({first_line(exc)})") from None
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{field}={spec!r}: module '{module_name}' has no attribute '{attribute}'")
        obj = getattr(obj, part)
    return obj


def shippable_module(spec: str) -> ModuleType | None:
    """The top-level module of `spec` when it is the user's own code (not installed), which Ray must ship to workers."""
    top = sys.modules.get(spec.partition(":")[0].split(".")[0])
    if top is None or getattr(top, "__file__", None) is None:
        return None
    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib", "stdlib")}
    location = Path(top.__file__).resolve()
    if any(root in location.parents for root in installed) or top.__name__ == "fedref_ray":
        return None
    return top


def user_code_env(names: Iterable[str]) -> dict | None:
    """A Ray runtime_env that ships the user's own modules among `names` (import paths, not installed) to workers.

    Ray uploads py_modules once for the job when this process starts or joins Ray, so workers on
    other nodes import them too.
    """
    found = (shippable_module(n) for n in names if is_import_path(n))
    modules = {m.__name__: m for m in found if m is not None}
    return {"py_modules": list(modules.values())} if modules else None
