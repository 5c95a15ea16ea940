"""What ``graphc.jvp`` and ``graphc.vjp`` are given: argument names and checks.

The primals must be a tuple of pytrees of floating arrays (or Python floats) that
fit the function's positional parameters; tangents and cotangents must match
what they belong to in structure, shapes and dtypes.  Every mistake is a graphc
error naming the user's line.  The generated function's parameters are the
primals' names, then ``dot_<name>`` (forward mode) or ``d_out`` (reverse mode).
"""
from __future__ import annotations

import inspect

from . import errors
from .avals import aval_of
from .capture import Spec, function_name
from .errors import GradError, SignatureError, UnsupportedError
from .primitive import Aval
from .pytree import flatten

__all__ = ["primal_names", "signature_stand_in", "check_primals", "check_like"]


# --- argument names of the generated def ---------------------------------------------
def primal_names(fn, n):
    """The names of ``fn``'s first ``n`` positional parameters (``arg<i>`` past them)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    pos = [p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                 inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    return [pos[i] if i < len(pos) else f"arg{i}" for i in range(n)]


def signature_stand_in(fn, names):
    """A function with parameters ``names`` standing in for ``fn`` when its arguments are
    bound (the generated def's signature); it unwraps to ``fn`` (file, line, name)."""
    def stand_in(*args):
        raise AssertionError("never called")
    stand_in.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
    stand_in.__name__ = function_name(fn)
    stand_in.__wrapped__ = fn
    return stand_in


# --- checking what the user passes ---------------------------------------------------
def _leaf_label(names, i, path):
    return names[i] + "".join(f"[{k!r}]" for k in path[1:])


def check_primals(name, fn, primals, what="primals"):
    """``primals`` must be a tuple (or list) of pytrees of floating arrays/floats."""
    where = errors.user_where()
    if not isinstance(primals, (tuple, list)):
        raise SignatureError(f"{name}: {what} must be a tuple of arguments, one per positional "
                             f"parameter, got {type(primals).__name__}", where=where,
                             hint=f"write {what}=(x,) for a function of one argument")
    names = primal_names(fn, len(primals))
    _check_arity(name, fn, primals, where)
    for i, p in enumerate(primals):
        leaves, tdef, paths = flatten(p, (i,))
        hits = _static_leaves(tdef)
        if hits:
            raise GradError(f"{name}: {what} argument {names[i]} holds the static value "
                            f"{hits[0]!r:.40} (a Python int, bool, str or None), which has no "
                            "derivative", where=where,
                            hint="pass it as a float, or close over it: "
                                 "lambda x: f(x, n) differentiates x alone")
        for x, path in zip(leaves, paths):
            a = _aval(name, x, where)
            if a.dtype.kind != "f":
                raise GradError(f"{name}: {what} argument {_leaf_label(names, i, path)} has "
                                f"integer or boolean dtype ({a.short()}), which has no "
                                "derivative", where=where,
                                hint="pass floats (x.astype(np.float64)), or close over the "
                                     "integer data: lambda x: f(x, idx)")
    return names


def _check_arity(name, fn, primals, where):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*primals)
    except TypeError as e:
        raise SignatureError(f"{name}: the function cannot be called with {len(primals)} "
                             f"primal{'s' * (len(primals) != 1)}: {e}", where=where,
                             hint=f"pass one primal per positional parameter of {sig}; close "
                                  "over the others (lambda x: f(x, y))") from None


def check_like(name, names, primals, others, what, where=None):
    """``others`` must match ``primals``: tree structure, shapes and dtypes."""
    where = where or errors.user_where()
    if not isinstance(others, (tuple, list)) or len(others) != len(primals):
        got = (f"a {type(others).__name__} of {len(others)}" if isinstance(others, (tuple, list))
               else type(others).__name__)
        raise SignatureError(f"{name}: {what} must be a tuple like the primals "
                             f"({len(primals)} argument{'s' * (len(primals) != 1)}), got {got}",
                             where=where, hint=f"pass one {what[:-1]} per primal, e.g. "
                                               f"graphc.jvp(f, (x,), (dx,))")
    for i, (p, t) in enumerate(zip(primals, others)):
        pl, pdef, paths = flatten(p, (i,))
        tl, tdef, _ = flatten(t, (i,))
        if pdef != tdef:
            raise SignatureError(f"{name}: the {what[:-1]} of {names[i]} has the structure "
                                 f"{tdef!r:.80}, the primal {pdef!r:.80}", where=where,
                                 hint=f"give each primal a {what[:-1]} of the same pytree "
                                      "structure, shapes and dtypes")
        for x, dx, path in zip(pl, tl, paths):
            a, b = _aval(name, x, where), _aval(name, dx, where)
            if a.shape != b.shape or a.dtype != b.dtype:
                raise SignatureError(
                    f"{name}: the {what[:-1]} of {_leaf_label(names, i, path)} is "
                    f"{b.short()}, but the primal is {a.short()}", where=where,
                    hint="a tangent has its primal's shape and dtype "
                         "(e.g. np.ones_like(x))")


def _aval(name, x, where):
    if isinstance(x, Spec):                # a placeholder, for .source() and .graph()
        return Aval(x.shape, x.dtype, False)
    try:
        return aval_of(x)
    except UnsupportedError as e:
        raise UnsupportedError(f"{name}: {e.message}", where=where, hint=e.hint) from None


def _static_leaves(tdef):
    if tdef.kind == "static":
        return [tdef.static]
    if tdef.kind == "none":
        return [None]
    return [v for c in tdef.children for v in _static_leaves(c)]
