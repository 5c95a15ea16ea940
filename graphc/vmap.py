"""``graphc.vmap``: a function of one example, batched (as ``jax.vmap``).

:class:`VmapCompiled` is a :class:`graphc.Compiled` whose body batches the user's
function (:func:`graphc.batching.batch_call`): compiled per signature, with
``.source()``/``.graph()``; called with traced values it records into the enclosing
trace, so ``grad(vmap(f))`` and ``vmap(grad(f))`` compose.
"""
from __future__ import annotations

import numpy as np

from . import errors
from .batching import batch_call, place
from .capture import def_where, function_name, live
from .compiled import Compiled
from .errors import ShapeError, SignatureError
from .pytree import flatten, unflatten
from .tracebacks import hidden_frames
from .tracing import Tracer, current_trace
from .codegen_xp import numpy_target_only

__all__ = ["VmapCompiled", "vmap"]


def _is_axis(a):
    return a is None or (isinstance(a, int) and not isinstance(a, bool))


def prefix_axes(axes, tree, what, where):
    """One axis per leaf of ``tree``: ``axes`` is an int/None or a pytree prefix of it."""
    if _is_axis(axes):
        return [axes] * len(flatten(tree)[0])
    if isinstance(axes, dict) and isinstance(tree, dict) and set(axes) == set(tree):
        return [a for k in tree for a in prefix_axes(axes[k], tree[k], what, where)]
    if isinstance(axes, (tuple, list)) and isinstance(tree, (tuple, list)) \
            and len(axes) == len(tree):
        return [a for ax, t in zip(axes, tree) for a in prefix_axes(ax, t, what, where)]
    raise SignatureError(f"{what} {axes!r} does not match the structure of the values "
                         f"({type(tree).__name__})", where=where,
                         hint="give an int, None, or a tuple/list/dict with one entry per "
                              "argument (or per item of the structure)")


def _traced(x):
    return isinstance(x, (Tracer, np.ndarray, np.generic, float, complex))


class VmapCompiled(Compiled):
    """``graphc.vmap(fn, in_axes, out_axes)``, compiled per signature."""

    def __init__(self, fn, in_axes=0, out_axes=0, *, cache_size=64):
        super().__init__(fn, "vmap", cache_size=cache_size)     # (checks fn is callable)
        for ax in (in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,)):
            if not (_is_axis(ax) or isinstance(ax, (tuple, list, dict))):
                raise SignatureError(f"graphc.vmap: in_axes entries are ints or None, got "
                                     f"{ax!r}", where=errors.user_where(),
                                     hint="e.g. in_axes=(None, 0)")
        self._in_axes = in_axes
        self._out_axes = out_axes
        self._label = f"graphc.vmap({function_name(fn)})"

    def _doc(self, params):
        return f"{function_name(self._fn)}, batched (graphc.vmap)."

    def _body(self):
        return self._batched

    def _axes(self, call_args, where):
        """One in_axes entry per leaf of the arguments."""
        axes_tree = self._in_axes
        if isinstance(axes_tree, list):
            axes_tree = tuple(axes_tree)
        if isinstance(axes_tree, tuple) and len(axes_tree) != len(call_args):
            raise SignatureError(f"{self._label}: in_axes has {len(axes_tree)} entries for "
                                 f"{len(call_args)} arguments", where=where,
                                 hint="one entry (int or None) per positional argument")
        if not isinstance(axes_tree, tuple):
            axes_tree = (axes_tree,) * len(call_args)
        return prefix_axes(axes_tree, tuple(call_args), "in_axes", where)

    def _leaves(self, leaves, axes, where):
        """The traced leaves, their batch axes (normalized) and the batch size."""
        trace = current_trace()
        traced, taxes, size = [], [], None
        for x, ax in zip(leaves, axes):
            if not _traced(x):
                if ax is not None:
                    raise SignatureError(f"{self._label}: a {type(x).__name__} argument cannot "
                                         f"be batched (in_axes {ax})", where=where,
                                         hint="give it in_axes None, or pass an array")
                continue
            x = trace.lift(x)
            if ax is not None:
                if not -x.ndim <= ax < x.ndim:
                    raise ShapeError(f"{self._label}: in_axes {ax} is out of range for an "
                                     f"argument of shape {x.shape}", where=where,
                                     hint="batch axes index the argument's own axes")
                ax %= x.ndim
                if size is not None and x.shape[ax] != size:
                    raise ShapeError(f"{self._label}: batch sizes differ: {size} and "
                                     f"{x.shape[ax]} (shape {x.shape}, axis {ax})",
                                     where=where, hint="every batched argument needs the "
                                                       "same size along its batch axis")
                size = x.shape[ax]
            traced.append(x)
            taxes.append(ax)
        if size is None:
            raise SignatureError(f"{self._label}: no argument is batched (every in_axes is "
                                 "None)", where=where,
                                 hint="give at least one argument a batch axis")
        return traced, taxes, size

    def _batched(self, call_args, call_kwargs):
        where = def_where(self._fn)
        if call_kwargs:
            raise SignatureError(f"{self._label} takes positional arguments only, got "
                                 f"{sorted(call_kwargs)}", where=errors.user_where(),
                                 hint="pass every argument positionally (in_axes names them "
                                      "by position)")
        leaves, tdef, _ = flatten(tuple(call_args))
        traced, taxes, size = self._leaves(leaves, self._axes(call_args, where), where)
        slots = [i for i, x in enumerate(leaves) if _traced(x)]

        def rebuild(per_example):
            full = list(leaves)
            for i, v in zip(slots, per_example):
                full[i] = v
            return unflatten(tdef, full)

        outs, out_tdef = batch_call(live(self._fn), traced, taxes, rebuild, self._label, where)
        out_tree = unflatten(out_tdef, [o for o, _ in outs])
        oaxes = prefix_axes(self._out_axes, out_tree, "out_axes", where)
        placed = []
        for (o, d), ax in zip(outs, oaxes):
            if ax is None:
                if d is not None:
                    raise ShapeError(f"{self._label}: out_axes None for an output that "
                                     "differs from example to example", where=where,
                                     hint="give it a batch axis in out_axes")
                placed.append(o)
            else:
                placed.append(place(o, d, ax % (o.ndim + (d is None)), size))
        return unflatten(out_tdef, placed)


def vmap(fn, in_axes=0, out_axes=0, *, target="numpy"):
    """Vectorize a function of one example over a batch axis, as ``jax.vmap``.

    Each operation of ``fn`` (traced once on one example) is recorded on the whole
    batch by its primitive's batching rule: the generated code is plain NumPy over the
    batch axis (``W @ x`` becomes ``x @ W.T``).  Compiled per signature, with
    ``.source(*args)``/``.graph(*args)``; composes with ``grad`` both ways
    (``vmap(grad(loss), in_axes=(None, 0, 0))``: per-example gradients).

    Parameters
    ----------
    fn : callable
        A function of NumPy values (or a graphc transform such as ``graphc.grad(f)``).
    in_axes : int, None, or tuple
        The batch axis of every argument, or one entry per argument: an int, None
        (the same for every example) or a pytree prefix of the argument.  Python
        ints, bools and strings are static, the same for every example.
    out_axes : int, None, or pytree prefix
        Where the batch axis goes in each output.

    Returns
    -------
    VmapCompiled
        The batched function.

    Raises
    ------
    UnsupportedError
        No batching rule (a ``cond``, ``switch`` or ``while_loop`` on a value per
        example is batched: every branch runs, or the loop runs while any example does).
    ControlFlowError
        ``if`` on a value that differs between examples (use ``np.where``).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def predict(W, x):
    ...     return np.tanh(W @ x)
    >>> W = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> xs = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    >>> batched = graphc.vmap(predict, in_axes=(None, 0))
    >>> np.allclose(batched(W, xs), [predict(W, x) for x in xs])
    True
    >>> print(batched.source(W, xs))  # doctest: +ELLIPSIS
    # Generated by graphc from predict...
    def predict_vmap(W, x):
    ...
    """
    with hidden_frames():
        numpy_target_only(target, "graphc.vmap")   # (graphc/codegen_xp.py)
        return VmapCompiled(fn, in_axes, out_axes)
