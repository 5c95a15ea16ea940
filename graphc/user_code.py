"""Whose code is running: the user's, graphc's or a library's; and what a traced
value lacks.

The profile hook that captures user names (graphc/tracing.py) and the random
stream watch (graphc/random_watch.py) ask these questions for every frame, so
the answers are cached per code object (bounded caches: no leak).
"""
from __future__ import annotations

import numpy as np

from . import errors

__all__ = ["is_user_code", "is_internal_code", "attribute_error", "cached_codes", "USER_CODE",
           "INTERNAL_CODE"]

INTERNAL_CODE: dict = {}
CODE_CACHE_LIMIT = 1024   # code objects remembered by the profile hook (bounded: no leak)




USER_CODE: dict = {}


def is_user_code(code) -> bool:
    """Code of the user's own program: not graphc's, NumPy's, a library's or the stdlib's."""
    if len(USER_CODE) >= CODE_CACHE_LIMIT:
        USER_CODE.clear()
    name = code.co_filename
    user = not (is_internal_code(code) or name.startswith(_library_dirs())
                or name.startswith("<") and not name.startswith(("<stdin>", "<ipython")))
    USER_CODE[code] = user
    return user


_LIBRARY_DIRS = None


def _library_dirs() -> tuple:
    global _LIBRARY_DIRS
    if _LIBRARY_DIRS is None:
        import os
        import sysconfig
        paths = sysconfig.get_paths()
        _LIBRARY_DIRS = tuple({os.path.join(os.path.realpath(paths[k]), "") for k in
                               ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
                              | {os.path.join(paths[k], "") for k in
                                 ("stdlib", "platstdlib", "purelib", "platlib") if k in paths})
    return _LIBRARY_DIRS


def is_internal_code(code) -> bool:
    internal = INTERNAL_CODE.get(code)
    if internal is None:
        if len(INTERNAL_CODE) >= CODE_CACHE_LIMIT:
            INTERNAL_CODE.clear()
        internal = INTERNAL_CODE[code] = errors._is_internal(code.co_filename) \
            or code.co_name.startswith("<") and code.co_name != "<lambda>"
    return internal


def cached_codes() -> int:
    """How many code objects the caches remember (bounded: they never leak)."""
    return max(len(INTERNAL_CODE), len(USER_CODE))


# Why a method traced values lack has no clean workaround of its own, and what to do.
_METHOD_HINTS = {
    "nonzero": "the result's shape depends on the values: use np.where(mask, x, 0) to keep "
               "the shape static",
}
_IN_PLACE = {"fill", "put", "resize", "sort", "itemset", "setfield", "setflags", "partition",
             "byteswap"}
_CONCRETE = {"tobytes", "tofile", "dump", "dumps", "tostring", "__reduce__"}


def attribute_error(x, name):
    """The error for ``x.name`` when traced values lack ``name``."""
    on_ndarray = hasattr(np.ndarray, name)
    is_method = on_ndarray and callable(getattr(np.ndarray, name))
    shown = f".{name}()" if is_method else f".{name}"
    if not on_ndarray:
        return errors.UnsupportedAttributeError(
            f"a traced array ({x._desc()}) has no attribute {name!r}, and neither has a "
            "NumPy array",
            hint="check the spelling; traced values behave like NumPy arrays (docs/ops.md "
                 "lists what graphc traces)")
    if name in _IN_PLACE:
        why = "modifies the array in place, and traced arrays are immutable"
        hint = "build a new array instead (np.where(mask, new, x), np.concatenate([...]))"
    elif name in _CONCRETE:
        why = "needs the concrete value, which is not known while graphc traces"
        hint = "call it on the function's result, after the call"
    else:
        why = "is not supported on traced values"
        hint = _METHOD_HINTS.get(name, "write it with the NumPy functions graphc traces "
                                       "(docs/ops.md lists them), or compute it outside the "
                                       "traced function, on its result")
    return errors.UnsupportedAttributeError(
        f"the NumPy array method {shown} {why} (on {x._desc()})", hint=hint)
