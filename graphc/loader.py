"""Executing generated module text under a file name that tracebacks can show.

Each generated module is compiled under a unique ``<graphc:label#n>`` name
whose lines live in :mod:`linecache` exactly as long as the code does.
"""
from __future__ import annotations

import linecache
import sys
import types
import weakref

from .naming import sanitize

__all__ = ["exec_module"]

_counter = [0]


def exec_module(source: str, func_name: str, label: str, run: str | None = None,
                bindings: dict | None = None):
    """Execute generated source under a linecache-registered file name.

    ``run`` (a :class:`Module`'s ``fast`` text, line for line the same as
    ``source``) is what is executed when given, with ``bindings`` in the
    module namespace.
    """
    _counter[0] += 1
    filename = f"<graphc:{label}#{_counter[0]}>"
    _purge_dead_lines()
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": f"graphc_generated_{sanitize(label)}", **(bindings or {})}
    exec(compile(source if run is None else run, filename, "exec"), namespace)
    fn = namespace[func_name]
    # The text stays in linecache (for tracebacks) exactly as long as the
    # function's code object lives: a traceback holds its frames' code, so it
    # keeps the lines it shows; a dropped compiled function leaves no entry.
    weakref.finalize(fn.__code__, _drop_lines, filename).atexit = False
    return fn


# File names whose code died while linecache was being walked (see _drop_lines).
_DEAD_LINES: list = []
_LINECACHE_CODE = {f.__code__ for f in vars(linecache).values()
                   if isinstance(f, types.FunctionType)}


def _drop_lines(filename):
    """Forget a dead generated module's text, unless linecache is mid-walk.

    A finalizer runs wherever the garbage collector happens to run, for
    instance inside ``linecache.checkcache()`` (doctest, pdb, IPython), which
    walks a snapshot of the cache's keys: removing one of them there would
    make it raise ``KeyError``.  Then the name waits for the next removal or
    the next generated module.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _LINECACHE_CODE:
            _DEAD_LINES.append(filename)
            return
        frame = frame.f_back
    linecache.cache.pop(filename, None)
    _purge_dead_lines()


def _purge_dead_lines():
    while _DEAD_LINES:
        linecache.cache.pop(_DEAD_LINES.pop(), None)
