"""NumPy on traced values: operators, ufuncs, array functions and methods.

Everything a user's NumPy code can do to a :class:`~graphc.tracing.Tracer`
is mapped here onto primitives and composites; anything else raises an
:class:`~graphc.errors.UnsupportedError` naming the NumPy function.
"""
from __future__ import annotations

import numpy as np

from .avals import Traced
from .errors import GraphcError, InPlaceError, UnsupportedError
from .ops import composite as C
from .ops import _numpy_table as table
from .ops import elementwise as E
from .ops import predicates as P
from .ops import rounding as R
from .ops.index import getitem
from .ops.linalg import matmul
from .ndarray_methods import METHODS as _NDARRAY_METHODS
from . import array_coercion  # noqa: F401  (np.array/np.asarray of traced values)
from .tracing import Tracer, install_numpy

# --- ufuncs ---------------------------------------------------------------------
def _positive(x):
    """``+x``: the same values (a copy, so a later write to one never shows in the other)."""
    return x


UFUNCS = {
    np.add: E.add, np.subtract: E.sub, np.multiply: E.mul, np.true_divide: E.div,
    np.negative: E.neg, np.exp: E.exp, np.log: E.log, np.sin: E.sin,
    np.cos: E.cos, np.tan: E.tan, np.tanh: E.tanh, np.sqrt: E.sqrt, np.log1p: E.log1p,
    np.expm1: E.expm1, np.absolute: E.abs, np.sign: E.sign, np.maximum: E.maximum,
    np.minimum: E.minimum, np.greater: E.gt, np.greater_equal: E.ge, np.less: E.lt,
    np.less_equal: E.le, np.equal: E.eq, np.not_equal: E.ne, np.matmul: matmul,
    np.positive: _positive,
}
for _f, _impl in table.UFUNCS.items():      # the family modules' @implements registrations
    if _f in UFUNCS:
        raise RuntimeError(f"np.{_f.__name__} is mapped twice (numpy_api and @implements)")
    UFUNCS[_f] = _impl
_REDUCE_UFUNCS = {np.add: C.sum, np.maximum: C.max, np.minimum: C.min}


def array_ufunc(ufunc, method, inputs, kwargs):
    if kwargs.get("out") is not None:
        raise InPlaceError(f"np.{ufunc.__name__}(..., out=...) writes into an array in place; "
                           "graphc's traced arrays are immutable",
                           hint="assign the result instead: y = np.%s(...)" % ufunc.__name__)
    kwargs.pop("out", None)
    if method == "reduce" and ufunc in _REDUCE_UFUNCS:
        axis, keepdims, dtype = kwargs.get("axis", 0), kwargs.get("keepdims", False), kwargs.get("dtype")
        if dtype is not None and ufunc is np.add:   # np.add.reduce(a, 0, np.uint8) wraps
            return C.sum(inputs[0], axis, keepdims, dtype)
        out = _REDUCE_UFUNCS[ufunc](inputs[0], axis=axis, keepdims=keepdims)
        return C.astype(out, dtype) if dtype is not None else out
    if method != "__call__":
        raise UnsupportedError(f"np.{ufunc.__name__}.{method} is not supported by graphc")
    fn = UFUNCS.get(ufunc)
    if fn is None:
        raise UnsupportedError(f"NumPy function np.{ufunc.__name__} is not supported by graphc",
                               hint="write it with supported functions (np.exp, np.log, np.where, ...) "
                                    "or open an issue asking for it")
    dtype, casting = kwargs.pop("dtype", None), kwargs.pop("casting", "same_kind")
    if kwargs:
        raise UnsupportedError(f"np.{ufunc.__name__}: argument(s) {sorted(kwargs)} are not supported")
    if dtype is None and casting == "same_kind":
        return fn(*inputs)
    loop = _ufunc_loop(ufunc, inputs, dtype, casting)
    # NumPy casts the inputs to the loop's dtypes and computes in them (np.subtract(a, b,
    # dtype=np.float32) rounds a and b first), then the result to the output's dtype.
    out = fn(*[x if _dtype_of(x) == dt else _cast(x, dt) for x, dt in zip(inputs, loop)])
    outs = [C.astype(o, dt) for o, dt in zip(out if ufunc.nout > 1 else (out,), loop[ufunc.nin:])]
    return tuple(outs) if ufunc.nout > 1 else outs[0]


def _cast(x, dtype):
    """``x`` in ``dtype``: a traced value through ``astype``, a number as NumPy casts it."""
    return C.astype(x, dtype) if isinstance(x, Traced) else np.asarray(x, dtype)[()]


def _dtype_of(x):
    """A value's dtype, or a Python number's type (NumPy's weak scalar)."""
    if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
        return type(x)
    aval = getattr(x, "aval", None)
    if aval is not None and aval.weak:
        return {"b": bool, "i": int, "u": int, "f": float, "c": complex}[aval.dtype.kind]
    return np.asarray(x).dtype if not hasattr(x, "dtype") else np.dtype(x.dtype)


def _ufunc_loop(ufunc, inputs, dtype, casting):
    """The dtypes of NumPy's loop for ``ufunc(*inputs, dtype=dtype, casting=casting)``:
    its inputs', then its outputs'; NumPy's casting errors as graphc errors."""
    given = tuple(_dtype_of(x) for x in inputs) + (None,) * ufunc.nout
    dtype = None if dtype is None else C.dtype_arg(dtype)
    signature = (None,) * ufunc.nin + (dtype,) * ufunc.nout
    try:
        loop = ufunc.resolve_dtypes(given, signature=signature, casting=casting)
    except (TypeError, ValueError) as e:      # NumPy's own message, at the user's line
        what = ", ".join(([f"dtype=np.{dtype.name}"] if dtype is not None else [])
                         + ([f"casting={casting!r}"] if casting != "same_kind" else []))
        raise UnsupportedError(f"np.{ufunc.__name__}(..., {what}): {e}",
                               hint="pass a dtype and casting NumPy accepts here") from None
    return loop


# --- array functions -------------------------------------------------------------
def _only_c(order, what):
    if order not in ("C", None):
        raise UnsupportedError(f"np.{what}(order={order!r}) is not supported; only order='C'")


def _no_out(fn):
    def wrapped(*args, out=None, **kwargs):
        if out is not None:
            raise InPlaceError("out= writes into an array in place; traced arrays are immutable",
                               hint="assign the result instead")
        return fn(*args, **kwargs)
    return wrapped


# Static answers about traced values (Python ints, tuples, dtypes), in NumPy's signatures.
def _shape(a):
    """The static shape, a tuple of Python ints (no graph node)."""
    return tuple(a.shape)


def _ndim(a):
    """The static number of dimensions, a Python int (no graph node)."""
    return a.ndim


def _size(a, axis=None):
    """The static number of elements, or the length of ``axis``: a Python int (no graph node)."""
    return a.size if axis is None else a.shape[axis]


def _result_type(*arrays_and_dtypes):
    """NumPy's result type of the arguments' dtypes (traced values count by their dtype)."""
    return np.result_type(*[getattr(x, "dtype", x) for x in arrays_and_dtypes])


FUNCTIONS = {
    np.shape: _shape, np.ndim: _ndim, np.size: _size, np.result_type: _result_type,
}
for _f, _impl in table.FUNCTIONS.items():
    if _f in FUNCTIONS:
        raise RuntimeError(f"{_f.__name__} is mapped twice (numpy_api and @implements)")
    FUNCTIONS[_f] = _impl


def array_function(func, args, kwargs):
    fn = FUNCTIONS.get(func)
    if fn is None:
        mod = getattr(func, "__module__", "numpy") or "numpy"
        mod = "np" + mod[len("numpy"):] if mod.startswith("numpy") else mod
        mod = "np" if mod.startswith("np._") or mod.startswith("np.core") else mod
        raise UnsupportedError(f"NumPy function {mod}.{func.__name__} is not supported by graphc",
                               hint="write it with supported functions (docs/ops.md lists them) "
                                    "or open an issue asking for it")
    try:
        return fn(*args, **kwargs)
    except TypeError as e:
        if isinstance(e, GraphcError) or "argument" not in str(e):   # graphc's own: as is
            raise
        raise UnsupportedError(f"np.{func.__name__}: {e}") from None


# --- indexing ------------------------------------------------------------------------
def parse_index(key):
    """Split a NumPy index into a static spec and the list of array arguments."""
    if not isinstance(key, tuple):
        key = (key,)
    spec, arrays = [], []
    for k in key:
        if isinstance(k, slice):
            for part in (k.start, k.stop, k.step):
                if isinstance(part, Tracer):
                    part.__index__()  # raises the control-flow error
            spec.append(("slice", _int_or_none(k.start), _int_or_none(k.stop), _int_or_none(k.step)))
        elif k is None:
            spec.append(("none",))
        elif k is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(k, Tracer):
            if k.dtype.kind == "b":
                raise UnsupportedError("boolean-mask indexing of a traced array gives a "
                                       "data-dependent shape",
                                       hint="use np.where(mask, x, 0) to keep the shape static")
            if k.dtype.kind not in "iu":
                raise UnsupportedError(f"index arrays must be integers, got {k.aval.short()}")
            spec.append(("array", len(arrays)))
            arrays.append(k)
        elif isinstance(k, (bool, np.bool_)):
            raise UnsupportedError("a boolean scalar index is not supported while tracing")
        elif isinstance(k, (int, np.integer)):
            spec.append(("int", int(k)))
        else:
            arr = np.asarray(k)
            if arr.dtype.kind == "b":
                arr = np.nonzero(arr)
                for a in arr:
                    spec.append(("array", len(arrays)))
                    arrays.append(a)
                continue
            if arr.dtype.kind not in "iu":
                raise UnsupportedError(f"unsupported index {k!r} (dtype {arr.dtype})")
            spec.append(("array", len(arrays)))
            arrays.append(arr)
    return tuple(spec), arrays


def _check_index(x, key):
    """Raise what NumPy raises for ``x[key]`` (float slice bounds, a boolean mask of the
    wrong length, a constant index out of range ...), as the matching graphc error.

    NumPy itself judges the index, on a zero-stride stand-in of ``x``'s shape with
    zero integer arrays in place of traced indices; traced parts it cannot judge
    (a traced slice bound, a boolean tracer) are left to :func:`parse_index`.
    """
    from .errors import GraphcError, IndexError_, ShapeError
    items = []
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, Tracer):
            if k.dtype.kind not in "iu":
                return
            k = np.zeros(k.shape, np.intp)
        elif isinstance(k, slice) and any(isinstance(p, Tracer) for p in (k.start, k.stop, k.step)):
            return
        elif isinstance(k, (list, tuple)) and any(isinstance(p, Tracer) for p in k):
            return
        items.append(k)
    stand_in = np.broadcast_to(np.zeros((), np.int8), x.shape)
    text = f"index into {x.aval.short()}"
    try:
        stand_in[tuple(items)]
    except GraphcError:
        return
    except IndexError as e:
        raise IndexError_(f"{text}: {e}") from None
    except TypeError as e:
        raise UnsupportedError(f"{text}: {e}",
                               hint="indices and slice bounds are ints: write int(i) "
                                    "(or i // k, not i / k)") from None
    except ValueError as e:
        raise ShapeError(f"{text}: {e}", hint="check the index against x.shape") from None


def _int_or_none(v):
    return None if v is None else int(v)


def _getitem(self, key):
    _check_index(self, key)
    spec, arrays = parse_index(key)
    if spec == (("ellipsis",),) or spec == ():
        return self
    return getitem(self, *arrays, spec=spec)


# --- methods and operators on Tracer -----------------------------------------------------
def _rev(fn):
    return lambda self, other: fn(other, self)


def _method_reshape(self, *shape, order="C"):
    _only_c(order, "reshape")
    return C.do_reshape(self, *shape)


def _method_astype(self, dtype, copy=True):
    return C.astype(self, dtype)


TRACER_METHODS = {
    "__add__": E.add, "__radd__": _rev(E.add), "__sub__": E.sub, "__rsub__": _rev(E.sub),
    "__mul__": E.mul, "__rmul__": _rev(E.mul), "__truediv__": E.div, "__rtruediv__": _rev(E.div),
    "__pow__": E.pow, "__rpow__": _rev(E.pow), "__matmul__": matmul, "__rmatmul__": _rev(matmul),
    "__neg__": E.neg, "__pos__": lambda self: self, "__abs__": E.abs,
    "__gt__": E.gt, "__ge__": E.ge, "__lt__": E.lt, "__le__": E.le, "__eq__": E.eq, "__ne__": E.ne,
    "__and__": P.bool_operator(E.logical_and, "&"), "__or__": P.bool_operator(E.logical_or, "|"),
    "__xor__": P.bool_operator(P.logical_xor, "^"), "__invert__": P.bool_operator(E.logical_not, "~"),
    "__rand__": P.bool_operator(E.logical_and, "&", True),
    "__ror__": P.bool_operator(E.logical_or, "|", True),
    "__rxor__": P.bool_operator(P.logical_xor, "^", True),
    "__getitem__": _getitem,
    "reshape": _method_reshape, "transpose": lambda self, *axes: C.do_transpose(self, *axes),
    "astype": _method_astype,
    "__floordiv__": R.floor_divide, "__rfloordiv__": _rev(R.floor_divide),
    "__mod__": R.remainder, "__rmod__": _rev(R.remainder),
    "__divmod__": R.divmod_, "__rdivmod__": _rev(R.divmod_),
    "__round__": R.python_round,
}

TRACER_METHODS.update(_NDARRAY_METHODS)
for _name, _impl in table.METHODS.items():
    if _name in TRACER_METHODS:
        raise RuntimeError(f"ndarray method {_name!r} is mapped twice (numpy_api and @implements)")
    TRACER_METHODS[_name] = _impl

install_numpy(array_ufunc, array_function, TRACER_METHODS)
