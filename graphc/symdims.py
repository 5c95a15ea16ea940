"""Named dimensions seen by the user's code while a symbolic signature is probed.

``graphc.Spec(("n", 784))`` names a dimension.  :mod:`graphc.symbolic_dims`
traces the function at several sizes of each named dimension (probes); during
each trace, the shapes the *user's* code reads from traced values
(``x.shape[0]``) hold :class:`Dim` objects: ints of the probe's size that also
carry their SymPy expression (``n``, ``n*64``, ``floor(n/2)``).  A Python
decision on one (``if x.shape[0] > 10``) that the named dimensions alone do not
decide is refused, naming the user's line: the exported module serves every
size, so no trace may depend on which size was probed.  graphc's own code
(layers, shape rules) sees plain ints: its decisions are checked by comparing
the code generated at every probe.
"""
from __future__ import annotations

import contextvars
import math
import operator
import sys
import threading

import numpy as np
import sympy as sp

from . import numpy_api, tracing
from .errors import ShapeError, _is_internal, user_where

__all__ = ["CODEGEN_SIZES", "Dim", "SymbolicShapeError", "nbytes", "probing", "symbol"]


class SymbolicShapeError(ShapeError):
    """A computation graphc cannot express for every size of a named dimension."""

    default_hint = ("a module traced with graphc.Spec((\"n\", ...)) serves every n: compute "
                    "without Python decisions on n (np.where or masks instead of if/else, "
                    "vectorized code instead of loops over range(n)), or trace with "
                    "concrete shapes (graphc traces once per shape)")


def symbol(name):
    """The SymPy symbol of a named dimension: a positive integer."""
    return sp.Symbol(name, integer=True, positive=True)


# {probe size: Dim} of the trace running in this context (None outside probing).
_PROBE = contextvars.ContextVar("graphc_probe_dims", default=None)
# Expressions the user's code computed from named dimensions: {str(expr): (expr, where)}.
_SEEN = contextvars.ContextVar("graphc_probe_seen", default=None)


# graphc functions that hand a shape through to their caller (np.shape, np.size)
_PASSTHROUGH = {numpy_api._shape.__code__, numpy_api._size.__code__}


def _from_user(depth=2):
    frame = sys._getframe(depth + 1)
    if frame.f_code in _PASSTHROUGH:    # np.shape(x): whoever called NumPy reads it
        while frame is not None and _internal(frame.f_code.co_filename):
            frame = frame.f_back
        return frame is not None
    return not _internal(frame.f_code.co_filename)


def _internal(filename):
    # graphc, NumPy, and code graphc generated and runs itself (<graphc:eager>)
    return _is_internal(filename) or filename.startswith("<graphc")


def _expr(x):
    return x.expr if isinstance(x, Dim) else sp.Integer(int(x))


class Dim(int):
    """A dimension's size at the probe being traced, with its symbolic expression."""

    def __new__(cls, value, expr):
        self = int.__new__(cls, value)
        self.expr = expr
        return self

    __repr__ = int.__repr__
    __str__ = int.__repr__
    __hash__ = int.__hash__

    def __reduce__(self):            # copies (deepcopy, pickle) are plain ints
        return int, (int(self),)

    def _arith(self, other, op, swap=False):
        if isinstance(other, bool) or not isinstance(other, int):
            return op(int(self), other) if not swap else op(other, int(self))
        a, b = (other, self) if swap else (self, other)
        value = op(int(a), int(b))
        expr = op(_expr(a), _expr(b))
        if op is operator.floordiv:
            expr = sp.floor(_expr(a) / _expr(b))
        expr = sp.simplify(expr) if op in (operator.floordiv, operator.mod) else expr
        if _from_user(2):
            seen = _SEEN.get()
            if seen is not None and expr.free_symbols:
                seen.setdefault(str(expr), (expr, user_where(3)))
        return Dim(value, expr)

    def __add__(self, o): return self._arith(o, operator.add)              # noqa: E704
    def __radd__(self, o): return self._arith(o, operator.add, True)       # noqa: E704
    def __sub__(self, o): return self._arith(o, operator.sub)              # noqa: E704
    def __rsub__(self, o): return self._arith(o, operator.sub, True)       # noqa: E704
    def __mul__(self, o): return self._arith(o, operator.mul)              # noqa: E704
    def __rmul__(self, o): return self._arith(o, operator.mul, True)       # noqa: E704
    def __floordiv__(self, o): return self._arith(o, operator.floordiv)    # noqa: E704
    def __rfloordiv__(self, o): return self._arith(o, operator.floordiv, True)  # noqa: E704
    def __mod__(self, o): return self._arith(o, operator.mod)              # noqa: E704
    def __rmod__(self, o): return self._arith(o, operator.mod, True)       # noqa: E704

    def __int__(self):
        return int.__int__(self) if not _from_user(1) else self._plain("int")

    def __float__(self):
        return int.__float__(self) if not _from_user(1) else self._plain("float")

    def _plain(self, what):
        raise SymbolicShapeError(
            f"{what}() of the named dimension {self.expr}: a plain {what} loses the dimension, "
            "and graphc could not follow its uses", where=user_where(3),
            hint="use the size as it is (x.shape[0] is an int; x.sum() / x.shape[0] divides "
                 "by it)")

    def __neg__(self):
        return Dim(-int(self), -self.expr)

    def _compare(self, other, op, sym_op, text):
        result = op(int.__int__(self), int.__int__(other) if isinstance(other, Dim) else other)
        if isinstance(other, bool) or not isinstance(other, int) or not _from_user(2):
            return result
        decided = sym_op(self.expr, _expr(other))
        if decided in (sp.true, sp.false) or isinstance(decided, bool):
            return result
        raise SymbolicShapeError(
            f"the code compares a named dimension: {self.expr} {text} {_expr(other)} is "
            f"{result} for the size being traced ({int(self)}) but not for every size",
            where=user_where(3))

    def __eq__(self, o): return self._compare(o, operator.eq, sp.Eq, "==")   # noqa: E704
    def __ne__(self, o): return self._compare(o, operator.ne, sp.Ne, "!=")   # noqa: E704
    def __lt__(self, o): return self._compare(o, operator.lt, sp.Lt, "<")    # noqa: E704
    def __le__(self, o): return self._compare(o, operator.le, sp.Le, "<=")   # noqa: E704
    def __gt__(self, o): return self._compare(o, operator.gt, sp.Gt, ">")    # noqa: E704
    def __ge__(self, o): return self._compare(o, operator.ge, sp.Ge, ">=")   # noqa: E704

    def __bool__(self):
        if int(self) != 0 and _from_user(1):
            decided = sp.Ne(self.expr, 0)
            if decided not in (sp.true, sp.false):
                raise SymbolicShapeError(
                    f"the code tests a named dimension's expression {self.expr} as a bool",
                    where=user_where(2))
        return int(self) != 0


def _user_shape(shape, what="shape"):
    """The shape (``what="size"``: the size) the user's code reads: probe sizes as
    :class:`Dim` objects.  ``len(x)`` of a named dimension is refused: ``len()``
    turns it into a plain int, whose later use graphc could not see."""
    dims = _PROBE.get()
    if dims is None or not _from_user(2):
        return shape if what == "shape" else math.prod(shape)
    shape = tuple(dims.get(d, d) if type(d) is int else d for d in shape)
    if what == "len" and isinstance(shape[0], Dim):
        raise SymbolicShapeError(
            f"len() of a traced value whose first dimension is the named dimension "
            f"{shape[0].expr}: len() gives a plain int, whose uses graphc cannot follow",
            where=user_where(2), hint="write x.shape[0] instead of len(x)")
    if what == "size":
        return math.prod(shape[1:], start=shape[0]) if shape else 1
    return shape


class probing:
    """Context: one probe trace, with ``{name: size}`` for the named dimensions."""

    def __init__(self, sizes):
        self.dims = {v: Dim(v, symbol(k)) for k, v in sizes.items()}
        self.seen = {}

    def __enter__(self):
        self._tokens = (_PROBE.set(self.dims), _SEEN.set(self.seen))
        with _LOCK:
            _ACTIVE[0] += 1
            tracing.SHAPE_HOOK[0] = _user_shape
        return self

    def __exit__(self, *exc):
        _PROBE.reset(self._tokens[0])
        _SEEN.reset(self._tokens[1])
        with _LOCK:                 # the hook costs nothing once no thread probes
            _ACTIVE[0] -= 1
            if not _ACTIVE[0]:
                tracing.SHAPE_HOOK[0] = None
        return False


_LOCK = threading.Lock()
_ACTIVE = [0]                       # probing contexts open, in all threads


# While named dimensions are probed: {probe size: the size graphc.codegen's memory
# choices (del, out=) assume}, so that they do not change with the probe size.
CODEGEN_SIZES = contextvars.ContextVar("graphc_codegen_sizes", default=None)


def nbytes(node):
    """The bytes of a node's value, as graphc.codegen's memory choices see them."""
    sizes = CODEGEN_SIZES.get()
    if sizes is None:
        return int(np.prod(node.shape, dtype=np.int64)) * node.dtype.itemsize
    return math.prod(sizes.get(d, d) for d in node.shape) * node.dtype.itemsize
