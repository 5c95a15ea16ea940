"""Pickling compiled callables by reference or, under cloudpickle, by value.

:class:`graphc.compiled.Compiled` pickles its function and options, never its cache;
these helpers decide whether a decorated module-level function goes by reference
(importable under its wrapped function's name) or by value (cloudpickle sending a
``__main__`` function to a Dask worker, whose ``__main__`` is not the user's script).
"""
from __future__ import annotations

import sys


def _global_name(obj):
    """``(module, qualname)`` when ``obj`` is importable under its wrapped function's name."""
    fn = obj._fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    found = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return (module, qualname) if found is obj else None


def _cloudpickle_by_value(module):
    """Whether ``cloudpickle`` is pickling right now and sends ``module``'s functions by value."""
    cp = sys.modules.get("cloudpickle")
    code = getattr(getattr(getattr(cp, "Pickler", None), "dump", None), "__code__", None)
    if code is None:
        return False
    if module != "__main__" and module not in cp.list_registry_pickle_by_value():
        return False
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def _load_global(module, qualname):
    import importlib
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj
