"""A traced value met by plain NumPy code: the errors that say what happened.

``buf[i] = x`` and ``table[labels]`` with ``buf``/``table`` plain NumPy arrays and ``x``/
``labels`` traced run NumPy's own C code, which asks the traced value for a concrete one.
Reading the user's frame (the bytecode it is executing) tells which of the two it was, so
the message can name the user's line and the fix.  Each function returns the error to
raise, or None when the frame is something else.
"""
from __future__ import annotations

import dis
import sys

from . import errors
from .errors import InPlaceError, UnsupportedError

__all__ = ["store_into_numpy_error", "index_into_numpy_error"]


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
