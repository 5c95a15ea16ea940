"""Auxiliary values (``has_aux=True``) of :func:`graphc.dask.value_and_grad`.

A loss with ``has_aux`` returns ``(loss, aux)``.  Each chunk computes its own aux;
how the chunks' values make the whole batch's is read from the graph, per leaf of
``aux``, with the states :mod:`graphc.batch_axis` gives every value:

- per example (a :class:`~graphc.batch_axis.Row` along an axis: predictions,
  per-example losses): the chunks' values are concatenated along that axis, in order;
- linear in sums over examples (a :class:`~graphc.batch_axis.Red`: an accuracy
  ``np.mean(pred == y)``, a sum of errors): weighted and summed like the loss, with
  the weights :func:`graphc.batch_chunks.chunk_weights` proves;
- independent of the batch (a parameter norm): the same in every chunk, taken once.

Anything else (a per-example value scaled by the batch size, a value that depends on
the batch size only) is a :class:`~graphc.batch_axis.BatchAxisError` at the line
that computes it.  On the workers each leaf is wrapped so that the tree sum of the
chunks' results (``+``) does the right thing: :class:`Cat` concatenates,
:class:`Same` keeps the first.
"""
from __future__ import annotations

import numpy as np

from .batch_axis import Free, Proof, Red, Row, refuse
from .batch_chunks import chunk_weights
from .pytree import flatten, unflatten

__all__ = ["aux_kinds", "wrap_aux", "unwrap_aux", "Cat", "Same"]


class Cat:
    """Per-example blocks of one aux leaf, concatenated along ``axis`` at the end."""

    def __init__(self, parts, axis):
        self.parts, self.axis = list(parts), axis

    def __add__(self, other):
        return Cat(self.parts + other.parts, self.axis)


class Same:
    """A batch-independent aux leaf: every chunk has the same value."""

    def __init__(self, value):
        self.value = value

    def __add__(self, other):
        return self


def aux_kinds(states, counts, label="graphc.dask", where=None):
    """For each aux leaf (outputs after the loss), its kind per chunk size:
    ``{rows: ("cat", axis) | ("sum", weight) | ("same",)}`` as a list over leaves.

    ``states``: ``{rows: (graph, output states)}`` with the whole batch's graph first.
    """
    rows_full, (g_full, full) = next(iter(states.items()))
    kinds = []
    for k in range(1, len(full)):
        st, nid = full[k], g_full.outputs[k]
        if isinstance(st, Row):
            if st.scale is not None or st.inner != 1:
                refuse(g_full, nid, label, "an auxiliary value is per example but scaled by the "
                       "batch size or merged with another axis, so chunks cannot be joined",
                       hint="return the per-example values unscaled")
            kinds.append({r: ("cat", st.axis) for r in states})
        elif isinstance(st, Red):
            chunks = {r: Proof(s[k].terms, s[k].offset) for r, (_, s) in states.items()
                      if isinstance(s[k], Red)}
            if len(chunks) != len(states):
                refuse(g_full, nid, label, "an auxiliary value has a different form for a chunk "
                       "than for the whole batch")
            weights = chunk_weights(Proof(st.terms, st.offset), chunks, counts, label, where)
            kinds.append({r: ("sum", w) for r, w in weights.items()})
        elif isinstance(st, Free) and not st.sized:
            kinds.append({r: ("same",) for r in states})
        else:
            refuse(g_full, nid, label, "an auxiliary value depends on the batch size but not on "
                   "the examples' values: no chunk computes it for the whole batch")
    return kinds


def wrap_aux(aux, kinds):
    """On a worker: a chunk's aux with each leaf wrapped for the tree sum."""
    leaves, tdef, _ = flatten(aux)
    if len(leaves) != len(kinds):
        raise ValueError(f"graphc.dask: the auxiliary value has {len(leaves)} arrays, the "
                         f"graph {len(kinds)}")
    out = []
    for leaf, kind in zip(leaves, kinds):
        if kind[0] == "cat":
            out.append(Cat([leaf], kind[1]))
        elif kind[0] == "sum":
            out.append(leaf if kind[1] == 1.0 else leaf * kind[1])
        else:
            out.append(Same(leaf))
    return unflatten(tdef, out)


def unwrap_aux(aux):
    """On the client: the whole batch's aux from the summed, wrapped leaves."""
    leaves, tdef, _ = flatten(aux)
    out = []
    for leaf in leaves:
        if isinstance(leaf, Cat):
            leaf = np.concatenate([np.asarray(p) for p in leaf.parts], axis=leaf.axis)
        elif isinstance(leaf, Same):
            leaf = leaf.value
        out.append(leaf)
    return unflatten(tdef, out)
