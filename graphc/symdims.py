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

import sympy as sp

from . import numpy_api, tracing
from .errors import ShapeError, _is_internal, user_where

__all__ = ["CODEGEN_SIZES", "Dim", "DimFloat", "SymbolicShapeError", "nbytes", "probing",
           "symbol"]


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
    if isinstance(x, (Dim, DimFloat)):
        return x.expr
    return sp.Integer(int.__int__(x)) if isinstance(x, int) else sp.Rational(float(x))


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _record(expr):
    """An expression the user's code computed: a candidate form for the fit."""
    seen = _SEEN.get()
    if seen is not None and expr.free_symbols:
        seen.setdefault(str(expr), (expr, user_where()))


def _compare(a, b, op, sym_op, text):
    av = int.__int__(a) if isinstance(a, Dim) else float.__float__(a)
    bv = int.__int__(b) if isinstance(b, Dim) else float.__float__(b) \
        if isinstance(b, DimFloat) else b
    result = op(av, bv)
    if not _number(b) or not _from_user(2):
        return result
    decided = sym_op(a.expr, _expr(b))
    if decided in (sp.true, sp.false) or isinstance(decided, bool):
        return result
    raise SymbolicShapeError(
        f"the code compares a named dimension: {a.expr} {text} {_expr(b)} is {result} for "
        f"the size being traced ({av}) but not for every size", where=user_where())


def _refuse(value, what):
    if _from_user(2):
        raise SymbolicShapeError(
            f"{what} of the named dimension {value.expr}: graphc cannot follow the result",
            where=user_where(),
            hint="use the size as it is (x.shape[0] is an int; x.sum() / x.shape[0] divides "
                 "by it; // and % stay symbolic)")


class _Symbolic:
    """Comparisons, bool() and the conversions shared by :class:`Dim` and :class:`DimFloat`."""

    __slots__ = ()

    def __eq__(self, o): return _compare(self, o, operator.eq, sp.Eq, "==")   # noqa: E704
    def __ne__(self, o): return _compare(self, o, operator.ne, sp.Ne, "!=")   # noqa: E704
    def __lt__(self, o): return _compare(self, o, operator.lt, sp.Lt, "<")    # noqa: E704
    def __le__(self, o): return _compare(self, o, operator.le, sp.Le, "<=")   # noqa: E704
    def __gt__(self, o): return _compare(self, o, operator.gt, sp.Gt, ">")    # noqa: E704
    def __ge__(self, o): return _compare(self, o, operator.ge, sp.Ge, ">=")   # noqa: E704

    def __bool__(self):
        if _from_user(1) and sp.Ne(self.expr, 0) not in (sp.true, sp.false):
            raise SymbolicShapeError(
                f"the code tests a named dimension's expression {self.expr} as a bool",
                where=user_where())
        return self._value() != 0

    def __int__(self):
        _refuse(self, "int()")
        return int(self._value())

    def __float__(self):
        _refuse(self, "float()")
        return float(self._value())

    def _arith(self, other, op, swap=False):
        if not _number(other):
            return NotImplemented
        a, b = (other, self) if swap else (self, other)
        value = op(_plain(a), _plain(b))
        if op is operator.floordiv:
            expr = sp.simplify(sp.floor(_expr(a) / _expr(b)))
        elif op is operator.mod:
            expr = sp.simplify(sp.Mod(_expr(a), _expr(b)))
        else:
            expr = op(_expr(a), _expr(b))
        if _from_user(2):
            _record(expr)
        if isinstance(value, int) and expr.is_integer:
            return Dim(value, expr)
        return DimFloat(float(value), expr)

    def __add__(self, o): return self._arith(o, operator.add)              # noqa: E704
    def __radd__(self, o): return self._arith(o, operator.add, True)       # noqa: E704
    def __sub__(self, o): return self._arith(o, operator.sub)              # noqa: E704
    def __rsub__(self, o): return self._arith(o, operator.sub, True)       # noqa: E704
    def __mul__(self, o): return self._arith(o, operator.mul)              # noqa: E704
    def __rmul__(self, o): return self._arith(o, operator.mul, True)       # noqa: E704
    def __truediv__(self, o): return self._arith(o, operator.truediv)      # noqa: E704
    def __rtruediv__(self, o): return self._arith(o, operator.truediv, True)  # noqa: E704
    def __floordiv__(self, o): return self._arith(o, operator.floordiv)    # noqa: E704
    def __rfloordiv__(self, o): return self._arith(o, operator.floordiv, True)  # noqa: E704
    def __mod__(self, o): return self._arith(o, operator.mod)              # noqa: E704
    def __rmod__(self, o): return self._arith(o, operator.mod, True)       # noqa: E704
    def __pow__(self, o): return self._arith(o, operator.pow)              # noqa: E704
    def __rpow__(self, o): return self._arith(o, operator.pow, True)       # noqa: E704

    def __neg__(self):
        return type(self)(-self._value(), -self.expr)

    def __pos__(self):
        return self

    def __abs__(self):
        return self if sp.Ge(self.expr, 0) == sp.true else _refuse(self, "abs()") or abs(
            self._value())

    def _other(self, *args):
        _refuse(self, "this operation")
        return NotImplemented


def _plain(x):
    return int.__int__(x) if isinstance(x, Dim) else float.__float__(x) \
        if isinstance(x, DimFloat) else x


class Dim(_Symbolic, int):
    """A dimension's size at the probe being traced, with its symbolic expression."""

    def __new__(cls, value, expr):
        self = int.__new__(cls, value)
        self.expr = expr
        return self

    __repr__ = int.__repr__
    __str__ = int.__repr__
    __hash__ = int.__hash__
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _Symbolic._other
    __lshift__ = __rshift__ = __divmod__ = __rdivmod__ = __invert__ = _Symbolic._other

    def _value(self):
        return int.__int__(self)

    def __index__(self):
        return int.__int__(self)

    def __reduce__(self):            # copies (deepcopy, pickle) are plain ints
        return int, (int.__int__(self),)


class DimFloat(_Symbolic, float):
    """A float computed from named dimensions (``1 / x.shape[0]``), with its expression."""

    def __new__(cls, value, expr):
        self = float.__new__(cls, value)
        self.expr = expr
        return self

    __repr__ = float.__repr__
    __str__ = float.__repr__
    __hash__ = float.__hash__
    __round__ = __trunc__ = __floor__ = __ceil__ = __divmod__ = __rdivmod__ = _Symbolic._other

    def _value(self):
        return float.__float__(self)

    def __reduce__(self):
        return float, (float.__float__(self),)


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
            where=user_where(), hint="write x.shape[0] instead of len(x)")
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


# True while named dimensions are probed: graphc.codegen's memory choices (del, out=),
# made by size, are left out, since they would change with the probe size.
CODEGEN_SIZES = contextvars.ContextVar("graphc_codegen_sizes", default=False)


def nbytes(node):
    """The bytes of a node's value, as graphc.codegen's memory choices see them (0 while
    named dimensions are probed)."""
    if CODEGEN_SIZES.get():
        return 0
    aval = node.aval      # (read directly: no Node property calls; ~4 reads per node)
    return math.prod(map(int, aval.shape)) * aval.dtype.itemsize
