"""A traced value met by plain NumPy code: the errors that say what happened.

``buf[i] = x`` and ``table[labels]`` with ``buf``/``table`` plain NumPy arrays and ``x``/
``labels`` traced run NumPy's own C code, which asks the traced value for a concrete one.
Reading the user's frame (the bytecode it is executing) tells which of the two it was, so
the message can name the user's line and the fix.  Each function returns the error to
raise, or None when the frame is something else.
"""
from __future__ import annotations

import dis
import linecache
import os
import re
import sys

import numpy as np

from . import errors
from .errors import InPlaceError, UnsupportedError

__all__ = ["store_into_numpy_error", "index_into_numpy_error", "concrete_array_error"]


_STORE_SUBSCR = dis.opmap["STORE_SUBSCR"]


def store_into_numpy_error(x):
    """``buf[i] = x`` with ``buf`` a NumPy array: say so, instead of NumPy's
    "setting an array element with a sequence".

    NumPy converts the value with ``__float__``/``__array__`` while the user's
    frame executes STORE_SUBSCR (a traced target would call Tracer.__setitem__).
    """
    frame = errors.user_frame(2)
    if frame is None or frame.f_lasti < 0:
        return None
    code = frame.f_code.co_code
    if frame.f_lasti >= len(code) or code[frame.f_lasti] != _STORE_SUBSCR:
        return None
    return InPlaceError(
        f"a traced value ({x._desc()}) was written into a NumPy array made from constants "
        "(e.g. buf = np.zeros(3); buf[0] = x), or used as its index: a plain NumPy array "
        "can neither hold a traced value nor be indexed by one",
        where=errors.where_text(frame.f_code.co_filename, frame.f_lineno),
        hint="make the buffer from a traced value so the write is traced, e.g. "
             "buf = np.zeros_like(x), or collect the values in a list and np.stack(...) them")


_BINARY_SUBSCR = dis.opmap.get("BINARY_SUBSCR", -1)


def index_into_numpy_error(x):
    """``table[labels]`` or ``np.take(table, labels)`` with ``table`` a NumPy array and
    ``labels`` traced: NumPy's own ``ndarray.__getitem__`` / ``ndarray.take`` run (no
    dispatch protocol covers indexing, and ``np.take`` dispatches on ``table`` only), ask
    the index for ``__array__`` and can only return concrete values, so the gather
    cannot be traced; say how to write it instead."""
    frame = errors.user_frame(2)
    if frame is None or frame.f_lasti < 0:
        return None
    code = frame.f_code.co_code
    inner = sys._getframe(2)
    in_take = any(f.f_code.co_name in ("take", "_wrapfunc") and "numpy" in f.f_code.co_filename
                  for f in (inner, inner.f_back, getattr(inner.f_back, "f_back", None)) if f)
    if not in_take and (frame.f_lasti >= len(code) or code[frame.f_lasti] != _BINARY_SUBSCR):
        return None
    return UnsupportedError(
        f"a NumPy array made from constants (e.g. np.eye(K)) was indexed with a traced index "
        f"({x._desc()}){' by np.take' if in_take else ''}: NumPy indexes a plain array "
        "itself, so graphc cannot trace it",
        where=errors.where_text(frame.f_code.co_filename, frame.f_lineno),
        hint="one-hot rows: (labels[:, None] == np.arange(K)).astype(np.float64); rows of a "
             "2-d table: np.take_along_axis(table, labels[:, None], axis=0); both are traced. "
             "Or pass the table as an argument, so table[labels] is traced")


_NUMPY_DIR = os.path.dirname(np.__file__) + os.sep
_CALL = re.compile(r"np\.([A-Za-z_]\w*)\s*\(")


def _asking_function(frame):
    """The NumPy function whose Python code asked for a concrete array (the outermost
    frame of NumPy's own code under the user's frame: ``np.full``, ``np.vectorize``), or,
    for NumPy's C functions, the ``np.NAME(...)`` call the user's frame is executing
    (``np.arange(0.0, x, 0.1)``); None when it cannot tell."""
    name, f = None, sys._getframe(2)
    while f is not None and f is not frame:
        if f.f_code.co_filename.startswith(_NUMPY_DIR):
            name = f.f_code.co_qualname.split(".")[0]      # vectorize.__call__ -> vectorize
        f = f.f_back
    if name is not None and not name.startswith("_"):
        return name
    m = _CALL.match(_call_text(frame) or "")     # the call the user's frame is executing
    n = m and m.group(1)
    return n if n and callable(getattr(np, n, None)) and n not in ("array", "asarray") else None


def _call_text(frame):
    """The source text of the expression the frame is executing (Python 3.11's positions:
    the whole call ``np.arange(0.0, x, 0.1)``, not every call on its line)."""
    try:
        line, end, col, end_col = list(frame.f_code.co_positions())[frame.f_lasti // 2]
    except (IndexError, ValueError, AttributeError):
        return None
    if line is None or line != end or col is None or end_col is None:
        return None
    text = linecache.getline(frame.f_code.co_filename, line).encode()
    return text[col:end_col].decode(errors="replace")


def concrete_array_error(x):
    """A traced value asked for as a concrete NumPy array: name the NumPy function that asked
    when the user's frame shows it."""
    frame = errors.user_frame(2)
    name = _asking_function(frame) if frame is not None else None
    what = (f"np.{name} needs a concrete NumPy array but was given a traced value "
            f"({x._desc()}): graphc does not trace np.{name} with traced arguments"
            if name else f"a traced value ({x._desc()}) was converted to a concrete NumPy "
            "array; this happens in NumPy functions graphc does not support, np.asarray(), "
            "or when indexing a NumPy array with a traced index")
    return UnsupportedError(
        what, hint="use the NumPy functions graphc supports (docs/ops.md lists them); to build "
                   "an array from traced values write np.stack([a, b]) (Python numbers may be "
                   "mixed in) or np.array(...) called as np.array in your own code; to index a "
                   "NumPy array with a traced index, pass the array as an argument so table[idx] "
                   "is traced")
