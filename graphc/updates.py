"""Writes into traced arrays (``y[i] = v``, ``y[:, 1:] += z``) as functional updates,
and the view tracking that keeps them faithful to NumPy.

A write records a new ``setitem`` node (a copy of the old value with the slots
replaced; see :mod:`graphc.ops.index`) and points the written
:class:`~graphc.tracing.Tracer` object at it: the Python object the user holds
now stands for the updated array, so later reads see the write and gradients
flow through it (the overwritten slots get zero, the written value the
cotangent of its slots).

NumPy views share memory with their base; graphc's values do not.  So graphc
tracks which traced values are views of which array (basic indexing, reshape,
transpose and broadcast_to make views; integer-array indexing and arithmetic
make copies) and refuses, with an :class:`~graphc.errors.InPlaceError` naming
both lines, the two cases where the results would differ:

- a write into an array that a live view overlaps, when the view is used
  afterwards (NumPy's view would show the write, graphc's would not);
- a write through a view (NumPy would change the array it views).

Installed on :class:`~graphc.tracing.Tracer` at import (``graphc/__init__``).
"""
from __future__ import annotations

import dis
import operator
import weakref

import numpy as np

from . import errors, tracing
from .errors import IndexError_, InPlaceError, ShapeError, UnsupportedError
from .numpy_api import _check_index, parse_index
from .ops import composite as C
from .ops.index import assign_check, setitem
from .ops.shape import broadcast_to
from .primitive import REGISTRY
from .tracing import Tracer, current_trace, foreign_tracer_error

__all__ = ["Buffer", "View", "write", "install"]

_REGION_LIMIT = 1 << 24     # larger arrays: any write is taken to touch every view


# --- view tracking ----------------------------------------------------------------------
class Buffer:
    """The memory of one traced array that views were made of: their weak references."""

    __slots__ = ("shape", "views", "prune_at")

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.views = []
        self.prune_at = 64

    def written(self, touched, where):
        """A write touched the flat positions ``touched()`` (a bool array, or None for
        "unknown: all"): every live view that overlaps them goes stale."""
        mask = None
        size = int(np.prod(self.shape, dtype=np.int64))
        live = []
        for ref in self.views:
            v = ref()
            if v is None or v._view is None or v._view.stale is not None:
                continue
            if size > _REGION_LIMIT:
                hit = True
            else:
                if mask is None:
                    mask = touched()
                hit = mask is None or bool(mask[v._view.region()].any())
            if hit:
                v._view.stale = where
            else:
                live.append(ref)
        self.views = live


class View:
    """What a view is: its buffer, the view it was made from (or None: the buffer's own
    array), the primitive step that made it, where, and the write that made it stale."""

    __slots__ = ("buf", "parent", "step", "where", "stale", "_region")

    def __init__(self, buf, parent, step, where):
        self.buf, self.parent, self.step, self.where = buf, parent, step, where
        self.stale = None
        self._region = None

    def region(self):
        """Flat positions in the buffer this view reads, at the view's shape."""
        if self._region is None:
            if self.parent is not None:
                base = self.parent.region()
            else:
                base = np.arange(int(np.prod(self.buf.shape, dtype=np.int64))).reshape(self.buf.shape)
            prim, params = self.step
            self._region = np.asarray(prim.impl(params)(base))
        return self._region

    def check(self):
        """Raise if a write this view would have seen in NumPy happened after it was made."""
        if self.stale is None:
            return
        raise InPlaceError(
            f"a view of an array is used after the array was written: the view was made at "
            f"{_line(self.where)} and the array written at {_line(self.stale)}; in NumPy the "
            "view would show that write, in graphc it would not",
            hint="take a copy when making the view (v = y[:2].copy()), or make the view after "
                 "the write")


def _line(where):
    text = errors.source_line(where)
    return f"{where} ({text})" if text else str(where)


def _view_of(out, src, step):
    """Mark ``out`` (a fresh result) as a view of ``src``."""
    if not isinstance(src, Tracer) or src._trace is not out._trace:
        return
    if src._view is not None:
        parent, buf = src._view, src._view.buf
    else:
        parent, buf = None, src._buf
        if buf is None:
            buf = src._buf = Buffer(src.shape)
    if len(buf.views) >= buf.prune_at:          # drop views nobody holds any more
        buf.views = [r for r in buf.views if r() is not None]
        buf.prune_at = max(64, 2 * len(buf.views))
    where = out._trace.graph[out.node].where or errors.user_where(3)
    out._view = View(buf, parent, step, where)
    buf.views.append(weakref.ref(out))


def _track_getitem(out, args, params):
    spec = params["spec"]
    if any(item[0] == "array" for item in spec):
        return                                   # advanced indexing copies
    if out.ndim == 0 and all(item[0] == "int" for item in spec):
        return                                   # a scalar (x[1, 2]) is a copy
    _view_of(out, args[0], (REGISTRY["getitem"], dict(params)))


def _tracker(name):
    def track(out, args, params):
        _view_of(out, args[0], (REGISTRY[name], dict(params)))
    return track


# --- the write -------------------------------------------------------------------------
def write(target: Tracer, key, value):
    """``target[key] = value``: point ``target`` at the updated array."""
    trace = target._trace
    if not trace.active or current_trace() is not trace:
        raise foreign_tracer_error(target)
    where = errors.user_where(2)
    if target._view is not None:
        raise _through_view(target, where)
    if target.aval.weak:
        raise InPlaceError("item assignment into a traced Python float: Python floats "
                           "are immutable", where=where,
                           hint="rebind the name instead: x = new_value")
    new, touched = _updated(target, key, value)
    _commit(target, new, touched, where)


def _commit(target, new, touched, where):
    if target._buf is not None:
        target._buf.written(touched, where)
    if new.node != target.node:
        _name_like(target, new.node)
    target.node = new.node


def _through_view(target, where):
    return InPlaceError(
        f"a write into a view of another array (the view was made at "
        f"{_line(target._view.where)}, the write is at {_line(where)}): NumPy would change "
        "the array it views, graphc cannot",
        where=where,
        hint="write into the array itself (y[:2][0] = v is y[0] = v), or write into a copy: "
             "v = y[:2].copy()")


def _updated(x, key, value):
    """``(the updated array, touched)``: ``touched()`` gives the written positions."""
    keys = key if isinstance(key, tuple) else (key,)
    if any(isinstance(k, Tracer) and k.dtype.kind == "b" for k in keys):
        return _masked_write(x, keys, value), lambda: None
    _check_index(x, key)
    spec, arrays = parse_index(key)
    v = _value(x, value)
    if not arrays and all(item[0] in ("ellipsis", "none") or item == ("slice", None, None, None)
                          for item in spec):
        return _full_write(x, spec, v), lambda: None
    new = setitem(x, v, *arrays, spec=spec)
    return new, lambda: _touched(x.shape, spec, arrays)


def _touched(shape, spec, arrays):
    if any(isinstance(a, Tracer) for a in arrays):
        return None
    from .ops.index import _concrete_index
    mask = np.zeros(shape, bool)
    mask[_concrete_index(spec, [np.asarray(a) for a in arrays])] = True
    return mask.ravel()


def _value(x, value):
    """The value to write, traced and cast to ``x``'s dtype (NumPy casts on assignment)."""
    trace = x._trace
    if isinstance(value, (list, tuple)) and _has_tracer(value):
        value = C.stack([_value(x, v if _has_tracer(v) else np.asarray(v, x.dtype))
                         for v in value])
    v = trace.lift(value)
    if v.dtype != x.dtype and not (v.aval.weak and trace.graph[v.node].op == "const"):
        v = C.astype(v, x.dtype)      # (a Python number is written as it is: y[0] = 1.5)
    return v


def _has_tracer(value):
    if isinstance(value, Tracer):
        return True
    return isinstance(value, (list, tuple)) and any(_has_tracer(v) for v in value)


def _full_write(x, spec, v):
    """``x[...] = v`` / ``x[:] = v``: the result is ``v`` broadcast to x's shape."""
    assign_check(x.shape, spec, [], v.shape)
    if v.aval.weak:
        node = x._trace.graph[v.node]
        v = (x._trace.lift(np.asarray(node.value, x.dtype)) if node.op == "const"
             else C.astype(v, x.dtype))
    while v.ndim > x.ndim:                        # NumPy drops leading size-1 axes
        v = C.do_reshape(v, v.shape[1:])
    if tuple(v.shape) != tuple(x.shape):
        v = broadcast_to(v, shape=tuple(x.shape))
    return x._trace.tracer(v.node)


def _masked_write(x, keys, value):
    """``x[mask] = v`` with a traced boolean mask: ``np.where`` keeps the shape static."""
    if len(keys) != 1:
        raise UnsupportedError("a traced boolean mask together with other indices in an "
                               "assignment", hint="write np.where(mask, v, x) instead")
    mask = keys[0]
    if tuple(mask.shape) != tuple(x.shape[:mask.ndim]):
        raise IndexError_(f"boolean index of shape {tuple(mask.shape)} does not match the "
                          f"indexed array of shape {tuple(x.shape)}")
    tail = tuple(x.shape[mask.ndim:])
    v = _value(x, value)
    while v.ndim > len(tail) and v.shape[0] == 1:
        v = C.do_reshape(v, v.shape[1:])
    if v.ndim > len(tail):
        raise UnsupportedError(
            f"assigning a value of shape {tuple(v.shape)} through a traced boolean mask: the "
            "number of True entries is known only when the function runs",
            hint="assign a scalar or a value that broadcasts to x's shape: "
                 "x = np.where(mask, v, x)")
    try:
        np.broadcast_shapes(tuple(v.shape), tail)
    except ValueError:
        raise ShapeError(f"cannot assign a value of shape {tuple(v.shape)} to the masked "
                         f"part of {x.aval.short()}") from None
    m = C.do_reshape(mask, tuple(mask.shape) + (1,) * len(tail))
    return np.where(m, v, x)


def _name_like(target, nid):
    """Name the updated value like the variable the user writes through (``y``)."""
    frame = errors.user_frame(3)
    if frame is None:
        return
    depth, f = 0, frame.f_back
    while f is not None:
        depth += 1
        f = f.f_back
    for name, value in frame.f_locals.items():
        if value is target and not name.startswith("_"):
            target._trace.note_name(nid, name, depth)
            return


# --- augmented assignment: y += z, y[:, 1:] *= 2 -----------------------------------------
_AUGMENTED = {"__iadd__": operator.add, "__isub__": operator.sub, "__imul__": operator.mul,
              "__itruediv__": operator.truediv, "__ifloordiv__": operator.floordiv,
              "__imod__": operator.mod, "__ipow__": operator.pow,
              "__imatmul__": operator.matmul, "__iand__": operator.and_,
              "__ior__": operator.or_, "__ixor__": operator.xor}


def _augmented(name, op):
    def method(self, other):
        result = op(self, other)
        if self.aval.weak or self.ndim == 0:      # scalars are immutable: rebind
            return result
        where = errors.user_where(1)
        if self._view is not None:
            if _stored_back():             # y[k] += z: Python stores the result into y[k]
                return result
            raise _through_view(self, where)
        if tuple(result.shape) != tuple(self.shape):
            raise ShapeError(f"non-broadcastable output operand with shape {tuple(self.shape)} "
                             f"doesn't match the broadcast shape {tuple(result.shape)}")
        if result.dtype != self.dtype:
            if not np.can_cast(result.dtype, self.dtype, "same_kind"):
                raise UnsupportedError(
                    f"Cannot cast ufunc output from dtype('{result.dtype}') to "
                    f"dtype('{self.dtype}') with casting rule 'same_kind' ({name})",
                    hint=f"write x = x {name[3:-2]} y to get a new array of the wider dtype")
            result = C.astype(result, self.dtype)
        _commit(self, result, lambda: None, where)
        return self
    method.__name__ = name
    return method


def _stored_back():
    """Is the user's line an augmented subscript assignment, ``y[k] += z``?  Python runs it
    as ``t = y[k]; t += z; y[k] = t``: the in-place result is written back by a
    STORE_SUBSCR right after the operator (only stack shuffles between)."""
    frame = errors.user_frame(3)
    if frame is None:
        return False
    after = False
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == frame.f_lasti:
            after = True
        elif after and ins.opname not in ("SWAP", "COPY", "CACHE", "NOP", "ROT_THREE",
                                          "ROT_TWO", "DUP_TOP_TWO"):
            return ins.opname == "STORE_SUBSCR"
    return False


# --- results that must not alias their input ---------------------------------------------
_LIKE = {"zeros_like", "ones_like", "full_like", "empty_like"}
_COPIES = {"copy", "array", "astype", "flatten", "nan_to_num", "positive", "__pos__"}


def _fresh(out, inputs, name):
    """A function's result: a new array when NumPy's would be (never an input object)."""
    if isinstance(out, Tracer):
        if name in _COPIES and (out._view is not None or any(out is a for a in inputs)):
            return out._trace.tracer(out.node)
        return out
    if isinstance(out, np.ndarray) and name in _LIKE:
        trace = next((a._trace for a in inputs if isinstance(a, Tracer)), None)
        if trace is not None:           # np.zeros_like(x) of a traced x: writable, traced
            value = np.zeros_like(out) if name == "empty_like" else out   # (never garbage)
            return trace.tracer(trace.graph.add_const(value))
    return out


def _wrap_method(name, fn):
    def method(self, *args, **kwargs):
        return _fresh(fn(self, *args, **kwargs), (self,) + args, name)
    method.__name__ = name
    return method


def install():
    """Put writes, augmented assignment and view tracking on :class:`Tracer`."""
    tracing.VIEW_TRACKERS.update(getitem=_track_getitem, reshape=_tracker("reshape"),
                                 transpose=_tracker("transpose"),
                                 broadcast_to=_tracker("broadcast_to"))
    Tracer.__setitem__ = write
    for name, op in _AUGMENTED.items():
        setattr(Tracer, name, _augmented(name, op))
    for name in ("copy", "astype", "flatten", "__pos__"):
        if name in vars(Tracer):
            setattr(Tracer, name, _wrap_method(name, vars(Tracer)[name]))
    ufunc, function = tracing._NUMPY["ufunc"], tracing._NUMPY["function"]
    tracing._NUMPY["ufunc"] = lambda uf, method, inputs, kwargs: _fresh(
        ufunc(uf, method, inputs, kwargs), inputs, "positive")
    tracing._NUMPY["function"] = lambda func, args, kwargs: _fresh(
        function(func, args, kwargs), tuple(args) + tuple(kwargs.values()),
        getattr(func, "__name__", ""))


install()
