"""The error for a traced value used outside the trace that owns it (graphc/tracing.py)."""
from __future__ import annotations

from .errors import EscapedTracerError

__all__ = ["escaped_error"]


def escaped_error(x, in_stack: bool) -> EscapedTracerError:
    """The error for a traced value used outside the trace that owns it.

    Three situations, told apart so the message names the real mistake: the
    value outlived its trace (kept in a global, a list, an attribute); a
    function compiled separately inside a traced function closes over a value
    of the enclosing trace; or the trace belongs to another thread.  ``in_stack``: the
    value's trace is open in this thread.
    """
    t = x._trace
    desc = x._desc()
    origin = (t.graph[x.node].where if x.node in t.graph else None)
    made = f", created at {origin}," if origin else ""
    if not t.active:
        return EscapedTracerError(
            f"a traced value ({desc}){made} was used after the traced function that produced "
            "it returned: it escaped its trace (stored in a global, a list, an attribute or a "
            "closure)",
            hint="return the value from the traced function (or pass it in as an argument) "
                 "instead of keeping it; traced values only exist while graphc traces")
    if in_stack:
        return EscapedTracerError(
            f"a function that graphc compiles separately uses a traced value ({desc}){made} of "
            "the enclosing trace: graphc.grad/value_and_grad/compile was called on concrete "
            "arrays inside a traced function, and the inner function closes over a traced value",
            hint="pass the traced value to the inner function as an argument, e.g. "
                 "graphc.grad(inner, argnums=0)(y, x) instead of closing over x, so it is "
                 "traced together with the enclosing function")
    return EscapedTracerError(
        f"a traced value ({desc}){made} belongs to a trace running in another thread",
        hint="tracing state is per thread: compute the value in this thread, or pass "
             "concrete arrays between threads")
