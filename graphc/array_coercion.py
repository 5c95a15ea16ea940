"""``np.array`` / ``np.asarray`` / ``np.asanyarray`` of traced values, in the user's code.

NumPy never dispatches these three through ``__array_function__`` (only with ``like=``):
they always return a concrete ``ndarray`` and call ``Tracer.__array__`` for a traced value,
which cannot give one.  No NumPy protocol lets ``np.asarray(x)`` return ``x`` itself.

So, while a trace is active (and only then), graphc puts a thin wrapper in place of the
three attributes of the ``numpy`` module.  The wrapper changes nothing unless all three hold:

1. the calling thread is tracing (the trace stack is per thread: other threads, and this
   one outside a trace, get NumPy's own function, with the same arguments);
2. the caller is the user's own code (``user_code.is_user_code``): NumPy, libraries and
   graphc itself keep NumPy's behaviour, and a library that converts a traced value still
   gets graphc's clear error;
3. the object holds a traced value (a tracer, or a nested list/tuple with one).

Then ``np.array([a, 0.5])`` is ``np.stack`` of the elements (converted as NumPy converts
them: the Python float is a float64 array), in NumPy's result dtype, and ``np.asarray(x)``
is ``x``.  The attributes are put back when the last active trace (of any thread) ends,
so nothing is left behind.  Known limits: code that imported the function itself
(``from numpy import array``) bypasses the wrapper and gets the error suggesting
``np.stack``; while some thread traces, ``np.array is numpy._core.multiarray.array``
is False and pickling the original function object by name fails.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

from .errors import OptionError, UnsupportedError
from .ops.assemble import as_array, copy as copy_array
from .ops.composite import astype, do_reshape
from .tracing import Tracer, current_trace, install_activation_hook
from .user_code import USER_CODE, is_user_code

__all__ = ["ORIGINALS"]

ORIGINALS = {"array": np.array, "asarray": np.asarray, "asanyarray": np.asanyarray}
_lock = threading.Lock()
_active = [0]


def _holds_traced(obj) -> bool:
    if isinstance(obj, Tracer):
        return True
    return isinstance(obj, (list, tuple)) and any(_holds_traced(v) for v in obj)


def _from_user(depth=2) -> bool:
    code = sys._getframe(depth).f_code
    user = USER_CODE.get(code)
    return is_user_code(code) if user is None else user


def _convert(obj, dtype, copy, ndmin, what):
    x = as_array(obj)
    if dtype is not None and np.dtype(dtype) != x.dtype:
        if copy is False:
            raise OptionError(f"np.{what}(..., copy=False): unable to avoid a copy while "
                              f"casting from {x.dtype} to {np.dtype(dtype)}",
                              hint="leave copy= out, or use np.asarray")
        x = astype(x, dtype)
    elif copy:                       # np.array copies: a fresh value for later writes
        x = copy_array(x)
    if ndmin > x.ndim:
        x = do_reshape(x, (1,) * (ndmin - x.ndim) + tuple(x.shape))
    return x


def _array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, ndmax=0,
           like=None):
    if ndmax and ndmax < np.ndim(as_array(object)):
        raise UnsupportedError("np.array(..., ndmax=...) below the traced value's dimension "
                               "would make an object array")
    return _convert(object, dtype, copy, ndmin, "array")


def _asarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    return _convert(a, dtype, copy, 0, "asarray")


def _wrapper(name, impl):
    original = ORIGINALS[name]

    def wrapper(*args, **kwargs):
        # (the fast path first: outside a trace this is NumPy's own function)
        if current_trace() is None or kwargs.get("like") is not None \
                or not _holds_traced(args[0] if args else kwargs.get("object", kwargs.get("a"))) \
                or not _from_user():
            return original(*args, **kwargs)
        return impl(*args, **kwargs)
    wrapper.__doc__, wrapper.__name__ = original.__doc__, name
    wrapper.__module__, wrapper.__qualname__ = "numpy", name
    return wrapper


WRAPPERS = {"array": _wrapper("array", _array), "asarray": _wrapper("asarray", _asarray),
            "asanyarray": _wrapper("asanyarray", _asarray)}


def _enter():
    with _lock:
        _active[0] += 1
        if _active[0] == 1:
            for name, fn in WRAPPERS.items():
                setattr(np, name, fn)


def _leave():
    with _lock:
        _active[0] -= 1
        if _active[0] == 0:
            for name, fn in WRAPPERS.items():
                if np.__dict__.get(name) is fn:     # never undo someone else's patch
                    setattr(np, name, ORIGINALS[name])


install_activation_hook(_enter, _leave)
