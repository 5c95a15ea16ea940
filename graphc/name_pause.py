"""Name capture paused while graphc's own rules build nodes (compile time).

``Trace.activate`` borrows the profile hook to read the user's variable names
(``Trace._profile``): a Python call on every function call and return, graphc's
own included.  Shape and gradient rules of the primitives in ``graphc/ops`` never
run the user's code, so they run with the hook off; that about halves the time to
build a large graph.  A rule that may reach the user's code (``graphc.custom_vjp``,
loops and branches) runs with it on, as before.
"""
from __future__ import annotations

import sys
import types

from .primitive import NOT_DIFFERENTIABLE

# The name-capturing hook functions (graphc.tracing registers Trace._profile).
PROFILE_HOOKS: set = set()
_INTERNAL_RULES: dict = {}
INTERNAL = _INTERNAL_RULES        # {prim: internal_rules(prim)}, read inline by tracing.bind


def names_hook():
    """The name-capturing profile hook of an open trace, or None."""
    hook = sys.getprofile()
    return hook if getattr(hook, "__func__", None) in PROFILE_HOOKS else None


def internal_rules(prim) -> bool:
    """Whether ``prim``'s shape rule, gradient rule and emission are graphc's own
    (functions of ``graphc.ops``): they never call the user's code."""
    own = _INTERNAL_RULES.get(prim)
    if own is None:
        own = _INTERNAL_RULES[prim] = all(
            _own_rule(fn) for fn in (prim.shape, prim.vjp, prim.numpy))
    return own


def _own_rule(fn) -> bool:
    if fn is None or isinstance(fn, str) or fn is NOT_DIFFERENTIABLE:
        return True                   # (no rule, or an emission template)
    mod = getattr(fn, "__module__", None)
    return isinstance(fn, types.FunctionType) and isinstance(mod, str) \
        and mod.startswith("graphc.ops.")


def quiet(prim, fn, *args):
    """``fn(*args)``, with the name hook off when ``prim``'s rules are graphc's own."""
    hook = names_hook()
    if hook is None or not internal_rules(prim):
        return fn(*args)
    sys.setprofile(None)
    try:
        return fn(*args)
    finally:
        sys.setprofile(hook)


def paused(fn, *args):
    """``fn(hook, *args)`` with the name hook off; ``hook`` (None when there was
    none) is for :func:`with_hook` around what may reach the user's code."""
    hook = names_hook()
    if hook is None:
        return fn(None, *args)
    sys.setprofile(None)
    try:
        return fn(hook, *args)
    finally:
        sys.setprofile(hook)


def with_hook(hook, fn, *args, **kw):
    """``fn(*args, **kw)`` with the name hook ``hook`` back on (None: as it is)."""
    if hook is None:
        return fn(*args, **kw)
    sys.setprofile(hook)
    try:
        return fn(*args, **kw)
    finally:
        sys.setprofile(None)
