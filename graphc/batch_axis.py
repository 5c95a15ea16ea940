"""Proof that a loss is a sum or mean of per-example terms (data parallelism).

:func:`prove` walks a traced forward graph and gives every value a state:

- :data:`FREE`: independent of the batch arguments (parameters, constants);
- :class:`Row` ``(axis, scale)``: one slice along ``axis`` per example, each slice
  a function of its own example only.  ``scale`` is set once the value has been
  multiplied by a constant that depends on the batch size (``l / n``): from then
  on only linear operations are allowed until the sum over examples;
- :class:`Red` ``(terms, offset)``: a linear function of sums over examples,
  ``sum_j a_j S_j + b``, with ``a_j`` the constant factors (``1/n`` of a mean) and
  ``offset`` true when a batch-independent ``b`` was added.

Elementwise ops, matmul on non-batch axes, reductions over other axes, transposes
and reshapes that keep the batch axis keep a :class:`Row`; the only way from a
:class:`Row` to the scalar loss is a ``sum`` over the batch axis followed by
linear operations.  Anything else on a batch value (``x - x.mean(0)``, a max or
sort over examples, a reshape that merges the batch axis, random numbers drawn
per row) raises :class:`BatchAxisError` naming the user's line.

:func:`graphc.batch_chunks.chunk_weights` turns the proofs of the whole batch's graph and each
chunk's graph into the weight of each chunk's (value, gradient): ``a_N / a_r``
(``r/N`` for a mean, 1 for a sum).  :func:`graphc.batch_chunks.compare` checks that a chunk's graph
is the whole batch's graph at another size and finds the constants that depend
on the batch size.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass, replace

import numpy as np

from .errors import UnsupportedError
from .primitive import REGISTRY

__all__ = ["BatchAxisError", "FREE", "FREE_N", "Row", "Red", "Proof", "prove",
           "output_states", "refuse"]


class BatchAxisError(UnsupportedError):
    """The loss is not provably a sum or mean of per-example terms."""

    default_hint = ("data parallelism needs loss = mean (or sum) over examples of a per-example "
                    "term; compute batch statistics outside the loss, or use graphc.value_and_grad "
                    "on the whole batch")


@dataclass(frozen=True)
class Free:
    """Independent of the batch; ``sized`` when it depends on the batch size."""

    sized: bool = False


FREE, FREE_N = Free(False), Free(True)


@dataclass(frozen=True)
class Row:
    """Values along ``axis`` belong to example ``(i // inner) % rows``: ``inner`` > 1 or a
    longer axis when the examples were merged with other axes (a convolution's layout)."""

    axis: int
    scale: float | None = None
    inner: int = 1


@dataclass(frozen=True)
class Red:
    terms: tuple
    offset: bool = False


@dataclass(frozen=True)
class Proof:
    """The loss is ``sum_j terms[j] * S_j (+ b if offset)``; ``terms`` are numbers."""

    terms: tuple
    offset: bool


#: the number of examples (rows of the batch arguments) in the graph being proved
_ROWS = contextvars.ContextVar("graphc_batch_rows", default=1)
_PASS = {"identity", "stop_gradient", "contiguous", "astype"}
_REDUCE = {"sum", "max", "min", "any", "all", "argmax", "argmin"}


def prove(g, batch_inputs, sized=frozenset(), label="graphc.dask") -> Proof:
    """The :class:`Proof` for graph ``g`` whose input nodes ``batch_inputs`` are
    chunked along axis 0; ``sized`` are nodes whose value depends on the batch size
    (from :func:`compare`).  Raises :class:`BatchAxisError`."""
    env = {}
    live = _live(g)
    rows = next((g[n].shape[0] for n in g.inputs if n in batch_inputs), 1)
    token = _ROWS.set(rows)
    try:
        return _walk(g, batch_inputs, sized, label, env, live)
    finally:
        _ROWS.reset(token)


def output_states(g, batch_inputs, sized=frozenset(), label="graphc.dask") -> list:
    """:func:`prove` of the loss (``g``'s first output), and the state of every output
    (a ``has_aux`` function's auxiliary values: graphc/dask_aux.py)."""
    env = {}
    token = _ROWS.set(next((g[n].shape[0] for n in g.inputs if n in batch_inputs), 1))
    try:
        _walk(g, batch_inputs, sized, label, env, _live(g))
    finally:
        _ROWS.reset(token)
    return [env[n] for n in g.outputs]


def _walk(g, batch_inputs, sized, label, env, live):
    for nid in g.order():
        if nid not in live:
            continue
        node = g[nid]
        if node.op == "input":
            env[nid] = Row(0) if nid in batch_inputs else FREE
        elif node.op == "const":
            env[nid] = FREE_N if nid in sized else FREE
        else:
            states = [env[a] for a in node.args]
            if all(isinstance(st, Free) for st in states):   # shapes read from the batch: sized
                env[nid] = FREE_N if nid in sized or any(st.sized for st in states) else FREE
            else:
                env[nid] = _step(g, nid, states, label)
    out = g.outputs[0]
    state = env[out]
    if isinstance(state, Free):
        refuse(g, out, label, "the loss does not depend on the batch arguments")
    if isinstance(state, Row) or g[out].shape != ():
        refuse(g, out, label, "the loss is not reduced over the examples (a scalar sum or mean)")
    return Proof(state.terms, state.offset)


def _live(g):
    seen, stack = set(), list(g.outputs)
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(g[n].args)
    return seen


def refuse(g, nid, label, why, hint=None):
    name = g[nid].name
    what = f"{name} = {g[nid].op}" if name else g[nid].op
    raise BatchAxisError(f"{label}: {why} ({what})", where=g[nid].where, hint=hint)


def _step(g, nid, states, label):
    node = g[nid]
    if all(isinstance(s, Free) for s in states):
        return FREE_N if any(s.sized for s in states) else FREE
    op = node.op
    if op == "guard":
        refuse(g, nid, label, "Python control flow (if/while/bool) on a value computed from "
                "the batch", hint="use np.where to choose per example")
    prim = REGISTRY.get(op)
    if op in _PASS or (prim is not None and prim.elementwise):
        return _elementwise(g, nid, states, label)
    rule = _RULES.get(op)
    if rule is None:
        refuse(g, nid, label, f"graphc cannot prove that {op} keeps the examples apart")
    return rule(g, nid, states, label)


# --- elementwise ----------------------------------------------------------------------------
def _const_scalar(g, nid):
    """The value of a scalar (size-1) constant node, or None."""
    node = g[nid]
    if node.op != "const" or int(np.prod(node.shape, dtype=np.int64)) != 1:
        return None
    return float(np.asarray(node.value, dtype=np.float64).reshape(()))


def _elementwise(g, nid, states, label):
    node = g[nid]
    if any(isinstance(s, Red) for s in states):
        return _linear_red(g, nid, states, label)
    out_nd = len(node.shape)
    pos = {(s.axis + out_nd - len(g[a].shape), s.inner)
           for a, s in zip(node.args, states) if isinstance(s, Row)}
    if len(pos) != 1:
        refuse(g, nid, label, "combines values whose example axes differ (pairs of examples)")
    pos, inner = pos.pop()
    scales = [s.scale for s in states if isinstance(s, Row)]
    scale = None
    if any(sc is not None for sc in scales):
        scale = _scaled_row(g, nid, states, scales, label)
    for a, s in zip(node.args, states):
        if isinstance(s, Row):
            if g[a].shape[s.axis] != node.shape[pos]:
                refuse(g, nid, label, "broadcasts the example axis")
            continue
        factor = _const_scalar(g, a)
        if s.sized:
            if factor is None:
                refuse(g, nid, label, "combines the examples with a value that depends on the "
                       "batch size (random numbers drawn per row, np.arange(n) ...)")
            if node.op not in ("mul", "div") or (node.op == "div" and a == node.args[0]):
                refuse(g, nid, label, "uses a value computed from the batch size with "
                       "per-example values", hint="divide the summed loss instead (np.mean(l) "
                       "or np.sum(l) / n)")
            scale = (scale or 1.0) * (factor if node.op == "mul" else 1.0 / factor)
            continue
        _check_free_operand(g, nid, a, pos, label)
    return Row(pos, scale, inner)


def _check_free_operand(g, nid, a, pos, label):
    """A batch-independent operand must be the same for every example."""
    shape = g[a].shape
    at = pos - (len(g[nid].shape) - len(shape))
    if at < 0 or shape[at] == 1:
        return
    if g[a].op == "const":
        value = np.asarray(g[a].value)
        if (value == np.take(value, [0], axis=at)).all():
            return
    refuse(g, nid, label, "combines the examples with a value that has one entry per example "
            "but does not come from the batch arguments (random numbers, np.arange(n) ...)")


def _scaled_row(g, nid, states, scales, label):
    """A row scaled by a batch-size constant: linear operations only."""
    op = g[nid].op
    known = {sc for sc in scales if sc is not None}
    rows = [s for s in states if isinstance(s, Row)]
    if op in ("add", "sub") and len(rows) == 2 and len(known) == 1 and None not in scales:
        return known.pop()
    if op in _PASS or op == "neg":
        return -scales[0] if op == "neg" else scales[0]
    if op in ("mul", "div") and len(rows) == 1:
        return scales[0]          # the other factor is checked by the caller
    refuse(g, nid, label, f"applies {op} to a per-example value already scaled by a "
            "constant that depends on the batch size", hint="scale the summed loss instead "
            "(np.sum(f(l)) / n, not np.sum(f(l / n)))")


def _linear_red(g, nid, states, label):
    """A linear operation on sums over examples."""
    node, op = g[nid], g[nid].op
    if any(isinstance(s, Row) for s in states):
        refuse(g, nid, label, "uses a sum or mean over the examples (a batch statistic) "
                "together with per-example values: the examples are mixed")
    reds = [(i, s) for i, s in enumerate(states) if isinstance(s, Red)]
    if op in _PASS or op == "neg":
        s = states[0]
        return Red(tuple(-t for t in s.terms), s.offset) if op == "neg" else s
    if op in ("add", "sub"):
        terms, offset = (), False
        for i, s in enumerate(states):
            sign = -1.0 if (op == "sub" and i == 1) else 1.0
            if isinstance(s, Red):
                terms += tuple(sign * t for t in s.terms)
                offset = offset or s.offset
            elif s.sized:
                refuse(g, nid, label, "adds a term that depends on the batch size to the loss")
            elif _const_scalar(g, node.args[i]) != 0.0:
                offset = True
        return Red(terms, offset)
    if op in ("mul", "div") and len(reds) == 1:
        i, s = reds[0]
        other = node.args[1 - i]
        factor = _const_scalar(g, other)
        if factor is not None and not (op == "div" and i == 1):
            factor = factor if op == "mul" else 1.0 / factor
            return Red(tuple(t * factor for t in s.terms), s.offset)
        refuse(g, nid, label, "multiplies the sum over examples by a computed value",
                hint="only constant factors (the 1/n of a mean) are allowed after the sum")
    refuse(g, nid, label, f"applies {op} to a sum over the examples (not linear)")


# --- reductions, products, shapes -------------------------------------------------------------
def _axes(params, nd):
    axis = params.get("axis")
    if axis is None:
        return tuple(range(nd))
    axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(a) % nd for a in axis) if nd else ()


def _reduce(g, nid, states, label):
    node, s = g[nid], states[0]
    x = node.args[0]
    if isinstance(s, Red):
        if node.op == "sum":
            return s
        refuse(g, nid, label, f"{node.op} of a sum over the examples")
    axes = _axes(node.params, len(g[x].shape))
    if s.axis in axes:
        if node.op != "sum":
            refuse(g, nid, label, f"{node.op} over the examples (only a sum or mean of "
                    "per-example terms splits over chunks)")
        return Red((1.0 if s.scale is None else s.scale,))
    if s.scale is not None and node.op != "sum":
        _scaled_row(g, nid, states, [s.scale], label)
    keep = node.params.get("keepdims", False)
    return replace(s, axis=s.axis if keep else s.axis - sum(a < s.axis for a in axes))


def _along_axis(g, nid, states, label):
    """log_softmax, cumsum, cumprod: along one axis, which must not be the batch axis."""
    node, s = g[nid], states[0]
    if not isinstance(s, Row) or s.scale is not None:
        refuse(g, nid, label, f"{node.op} of a sum over the examples or of a scaled value")
    if int(node.params["axis"]) % len(g[node.args[0]].shape) == s.axis:
        refuse(g, nid, label, f"{node.op} along the example axis mixes the examples")
    return s


def _matmul(g, nid, states, label):
    node = g[nid]
    out_nd = len(node.shape)
    if any(isinstance(s, Red) for s in states):
        refuse(g, nid, label, "matrix product with a sum over the examples")
    nds = [len(g[a].shape) for a in node.args]
    out_batch = out_nd - (2 if min(nds) >= 2 else 1)   # leading (stacked) axes of the result
    positions = []
    for nd, s, contracted in zip(nds, states, (-1, -2)):
        if not isinstance(s, Row):
            continue
        if nd == 1 or s.axis == nd + contracted:
            refuse(g, nid, label, "the matrix product sums over the example axis")
        if s.axis == nd - 2 and contracted == -1:      # a row of the left operand
            positions.append((out_nd - 1 if nds[1] == 1 else out_nd - 2, s.inner))
        elif s.axis == nd - 1:                         # a column of the right operand
            positions.append((out_nd - 1, s.inner))
        else:
            positions.append((s.axis + out_batch - (nd - 2), s.inner))
    if len(set(positions)) != 1 or (len(positions) == 2 and positions[0][0] >= out_batch):
        refuse(g, nid, label, "the matrix product combines different examples")
    scales = [s.scale for s in states if isinstance(s, Row) and s.scale is not None]
    if scales and len(positions) == 2:
        refuse(g, nid, label, "a product of two scaled per-example values")
    return Row(positions[0][0], scales[0] if scales else None, positions[0][1])


def _transpose(g, nid, states, label):
    s = states[0]
    if isinstance(s, Red):
        return s
    return replace(s, axis=list(g[nid].params["axes"]).index(s.axis))


def _reshape(g, nid, states, label):
    s = states[0]
    if isinstance(s, Red):
        return s
    src, dst = g[g[nid].args[0]].shape, g[nid].shape
    # the example index is (flat // inner_flat) % rows in the row-major order of both
    inner_flat = s.inner * int(np.prod(src[s.axis + 1:], dtype=np.int64))
    rows = _ROWS.get()
    for k, n in enumerate(dst):
        after = int(np.prod(dst[k + 1:], dtype=np.int64))
        if inner_flat % after == 0 and n % (rows * (inner_flat // after)) == 0:
            return replace(s, axis=k, inner=inner_flat // after)
    refuse(g, nid, label, f"reshape {src} -> {dst} merges or splits the example axis",
            hint="keep the examples on their own axis: x.reshape(n, -1)")


def _broadcast_to(g, nid, states, label):
    s = states[0]
    if isinstance(s, Red):
        return s
    x = g[nid].args[0]
    pos = s.axis + len(g[nid].shape) - len(g[x].shape)
    if g[nid].shape[pos] != g[x].shape[s.axis]:
        refuse(g, nid, label, "broadcasts the example axis")
    return replace(s, axis=pos)


def _concatenate(g, nid, states, label):
    node = g[nid]
    rows = {(s.axis, s.scale, s.inner) for s in states if isinstance(s, Row)}
    if len(rows) != 1 or any(isinstance(s, Red) for s in states):
        refuse(g, nid, label, "concatenates values whose example axes differ")
    axis, scale, inner = rows.pop()
    if int(node.params["axis"]) % len(node.shape) == axis:
        refuse(g, nid, label, "concatenates along the example axis")
    for a, s in zip(node.args, states):
        if isinstance(s, Free):
            if scale is not None:
                refuse(g, nid, label, "concatenates a per-example value scaled by a batch-size "
                       "constant with other values")
            if s.sized and not _uniform_row_const(g, a, axis):
                refuse(g, nid, label, "concatenates a value computed from the batch size")
            _check_free_operand(g, nid, a, axis, label)
    return Row(axis, scale, inner)


def _uniform_row_const(g, a, axis):
    return g[a].op == "const" and bool((np.asarray(g[a].value) == np.take(
        np.asarray(g[a].value), [0], axis=axis)).all())


def _take_along_axis(g, nid, states, label):
    node = g[nid]
    idx, (sx, si) = node.args[1], states
    if not isinstance(sx, Row) or isinstance(si, Red) or int(node.params["axis"]) % len(node.shape) == sx.axis:
        refuse(g, nid, label, "take_along_axis along (or across) the example axis")
    if isinstance(si, Row) and (si.axis, si.inner) != (sx.axis, sx.inner):
        refuse(g, nid, label, "take_along_axis with indices of other examples")
    if isinstance(si, Free):
        _check_free_operand(g, nid, idx, sx.axis, label)
    return sx


def _windows(g, nid, states, label):
    """im2col, max_pool: windows over axes 2 and 3 of an NCHW image (more axes after
    them for im2col are carried along)."""
    s = states[0]
    if not isinstance(s, Row) or s.axis in (2, 3) or (s.scale is not None and g[nid].op != "im2col"):
        refuse(g, nid, label, f"{g[nid].op} slides its windows over the example axis")
    return s


_RULES = {"sum": _reduce, "max": _reduce, "min": _reduce, "any": _reduce, "all": _reduce,
          "argmax": _reduce, "argmin": _reduce, "log_softmax": _along_axis,
          "cumsum": _along_axis, "cumprod": _along_axis, "matmul": _matmul,
          "transpose": _transpose, "reshape": _reshape, "broadcast_to": _broadcast_to,
          "concatenate": _concatenate, "take_along_axis": _take_along_axis,
          "im2col": _windows, "max_pool": _windows}

from .batch_axis_index import getitem_rule  # noqa: E402  (uses the states and helpers above)

_RULES["getitem"] = getitem_rule
