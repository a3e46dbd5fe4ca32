"""Unpickling of data files that can build nothing but plain values and numpy arrays, so a file cannot run code.

`pickle` calls whatever global a file names (`os.system`, `builtins.exec`, ...). Every such lookup goes
through `Unpickler.find_class`, so refusing all but the few numpy functions that rebuild arrays, and
the latin-1 encoding Python 3 uses for bytes at protocol 2, leaves a file only dicts, lists, strings,
bytes, numbers and arrays (the "Restricting Globals" recipe of Python's pickle documentation).
"""

from __future__ import annotations

import codecs
import pickle
from typing import Any, BinaryIO

import numpy as np

_LATIN1 = codecs.lookup("latin-1").name


class ForbiddenGlobal(pickle.UnpicklingError):
    """The file names a global outside the allowed set; `name` says which (module.name)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"refusing to load global {name!r}")
        self.name = name


def _latin1_encode(text: str, encoding: str = "latin-1") -> bytes:
    """`_codecs.encode` as Python 3 pickles bytes at protocol 2, for latin-1 only (any codec else is refused)."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != _LATIN1:
        raise ForbiddenGlobal(f"_codecs.encode(..., {encoding!r})")
    return text.encode("latin-1")


def _numpy_core(module: str) -> Any:
    core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
    return getattr(core, module)


def _allowed() -> dict[tuple[str, str], Any]:
    multiarray, numeric = _numpy_core("multiarray"), _numpy_core("numeric")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for prefix in ("numpy.core", "numpy._core"):  # pickles of numpy 1 and numpy 2
        allowed[(f"{prefix}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{prefix}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{prefix}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _ArraysOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise ForbiddenGlobal("persistent id")


def load_arrays_pickle(handle: BinaryIO, encoding: str = "latin1") -> Any:
    """Unpickle `handle` allowing only plain values and numpy arrays; raise ForbiddenGlobal for anything else.

    An object array can hold only what the file may build anyway: plain values and arrays.
    """
    return _ArraysOnlyUnpickler(handle, encoding=encoding).load()
