"""The cyclic garbage collector while graphc builds a graph (compile time).

A build allocates hundreds of thousands of small objects, nearly all freed by
reference counting as it goes (graphc's graphs sit in no reference cycle: see
``tests/test_compile_speed3.py``).  :func:`paused` keeps the collector off for the
whole build, so none of its young collections run in the middle of it.

What survives a build (the graph of a compiled function, about 35,000 tracked
objects for a 26,000-node graph) would then be scanned by the first young
collection after it, and again by the next one a generation up: 0.05-0.1 s in a
process that has imported torch and jax.  When the build succeeds, the survivors
are handed straight to the oldest generation instead (``gc.freeze()`` then
``gc.unfreeze()``, two list splices), where only full collections see them, as
they would after two young collections anyway.  Skipped when the program froze
objects itself (``gc.get_freeze_count()``: unfreezing would thaw them) and when
the build raised (its traceback's frames are reference cycles that should go at
the next young collection).  The collector's state is restored in every case.
"""
from __future__ import annotations

import contextlib
import gc

__all__ = ["paused"]


@contextlib.contextmanager
def paused():
    """Pause Python's cyclic garbage collector while a graph is built (nested: the
    outermost pause decides); on success, move what survived to the oldest generation."""
    was = gc.isenabled()
    gc.disable()
    ok = False
    try:
        yield
        ok = True
    finally:
        if was:
            if ok and gc.get_freeze_count() == 0:
                gc.freeze()               # (every tracked object, into the permanent set,
                gc.unfreeze()             # then all of it into the oldest generation)
            gc.enable()
