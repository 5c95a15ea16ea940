"""Calls with Python floats only (W1): the code of the last entry, called first.

``Compiled.__call__`` keeps, in ``_hot``, the arity ``n`` and a function of ``n``
arguments for the entry it used last, when that entry's key is ``n`` exact Python
floats (no keywords, no closed-over arrays, no Spec).  A call with no keywords and
``n`` positional arguments calls it first; the function tests that every argument's
type is exactly ``float`` and answers :data:`NOT_FLOATS` otherwise, and only then does
``__call__`` compute the cache key.  So this path serves exactly the signature the key
``(float,) * n`` names, and every other call (a float subclass, a NumPy scalar, an
int, an array, a tracer) takes the key as before.

- A signature whose code has a ``math`` body (graphc/codegen_scalar.py) runs a variant
  of it that already tests ``type(x) is float`` for every argument: where the source
  sends a float subclass to NumPy's code, the variant returns ``_NOT_FLOATS``
  (:func:`graphc.codegen_scalar.floats_only_variant`).  The cached call is then
  ``__call__`` and the generated function, nothing else.
- Other signatures (NumPy's code only, guarded paths) get :func:`checked`, a small
  function testing the types before calling the entry's code.
"""
from __future__ import annotations

__all__ = ["NOT_FLOATS", "NO_HOT", "checked", "hot_of"]


class _NotFloats:
    __slots__ = ()

    def __repr__(self):
        return "<not Python floats>"


#: What a floats-only function answers for arguments that are not all exact floats.
NOT_FLOATS = _NotFloats()
#: ``Compiled._hot`` when the last entry is not one of Python floats only.
NO_HOT = (-1, None)


def checked(fn, n):
    """``fn`` of ``n`` exact Python floats, else :data:`NOT_FLOATS`."""
    if n == 1:
        def call(a):
            return fn(a) if type(a) is float else NOT_FLOATS
    elif n == 2:
        def call(a, b):
            return fn(a, b) if type(a) is type(b) is float else NOT_FLOATS
    else:
        def call(*args):
            for x in args:
                if type(x) is not float:
                    return NOT_FLOATS
            return fn(*args)
    return call


def hot_of(entry, key) -> tuple:
    """``Compiled._hot`` for ``entry`` found under ``key``: ``(n, function)`` or NO_HOT."""
    if type(key) is not tuple or any(k is not float for k in key) \
            or getattr(entry, "has_spec", True) or getattr(entry, "closure", True):
        return NO_HOT
    if getattr(entry, "floats_only", False):      # its code tests the types itself
        return len(key), entry.fn
    return len(key), checked(entry.fn, len(key))
