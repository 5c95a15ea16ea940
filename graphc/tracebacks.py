"""Tracebacks without graphc's own frames, as JAX filters its tracebacks.

An error in a traced function passes through a dozen of graphc's frames (the
compiled call, the cache, the tracer, NumPy's dispatch) between the user's
call and the user's line.  At graphc's entry points (:class:`hidden_frames`) those
frames are dropped from the traceback, so it shows the user's frames only,
with a note saying so.  ``GRAPHC_TRACEBACK=full`` keeps every frame; so does
an error raised by graphc's own code that is not a :class:`GraphcError` (a bug
in graphc: its frames are the interesting ones).
"""
from __future__ import annotations

import os
import types

__all__ = ["hidden_frames", "filter_traceback"]

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep
_NOTE = ("(graphc hid {n} of its own frames from this traceback; set the environment "
         "variable GRAPHC_TRACEBACK=full to see them)")


def _internal(tb) -> bool:
    return tb.tb_frame.f_code.co_filename.startswith(_PKG)


def filter_traceback(e: BaseException) -> BaseException:
    """``e`` with graphc's frames removed from its traceback (in place; returns ``e``)."""
    if os.environ.get("GRAPHC_TRACEBACK", "").lower() == "full":
        return e
    frames, tb = [], e.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    if not frames:
        return e
    from .errors import GraphcError
    if _internal(frames[-1]) and not isinstance(e, GraphcError):
        return e                  # raised by graphc itself, not for a user mistake: a bug
    keep = [t for t in frames if not _internal(t)]
    hidden = len(frames) - len(keep)
    if not hidden:
        return e
    new = None
    for t in reversed(keep):
        new = types.TracebackType(new, t.tb_frame, t.tb_lasti, t.tb_lineno)
    e.__traceback__ = new
    if not getattr(e, "_graphc_filtered", False):
        e._graphc_filtered = True
        if hasattr(e, "add_note"):
            e.add_note(_NOTE.format(n=hidden))
    return e


class hidden_frames:
    """``with hidden_frames():`` around a public entry point's body: an error leaves it
    with graphc's frames hidden (a context manager, not a decorator, so that the
    entry point stays the module's own function for doctest and ``inspect``)."""

    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is not None and isinstance(error, Exception):
            filter_traceback(error)
        return False              # re-raised as it is: the filtered traceback stays
