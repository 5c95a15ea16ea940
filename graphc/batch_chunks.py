"""The weight of each chunk in a data-parallel gradient, and the check that a chunk's
graph is the whole batch's graph at another size (see :mod:`graphc.batch_axis`)."""
from __future__ import annotations

import numpy as np

from .batch_axis import BatchAxisError, Proof, refuse

__all__ = ["compare", "chunk_weights"]


def compare(g_full, g_chunk, label="graphc.dask"):
    """Nodes of ``g_full`` whose value depends on the batch size (constants that differ
    per example, other nodes whose shape or parameters differ).

    Raises :class:`BatchAxisError` when the two graphs differ in more than shapes
    and constants (Python code that branches on the batch size).
    """
    order = g_full.order()
    if order != g_chunk.order() or any(
            g_full[n].op != g_chunk[n].op or tuple(g_full[n].args) != tuple(g_chunk[n].args)
            or _params(g_full[n]) != _params(g_chunk[n]) for n in order):
        bad = next((n for n in order if n not in g_chunk or g_full[n].op != g_chunk[n].op),
                   g_full.outputs[0])
        refuse(g_full, bad, label, "the function computes something different for a chunk "
                "than for the whole batch (Python code that depends on the batch size)")
    sized = set()
    for n in order:
        a, b = g_full[n], g_chunk[n]
        if a.op == "const":
            if not _same_per_row(a.value, b.value):
                sized.add(n)
        elif a.shape != b.shape or a.params != b.params:
            sized.add(n)      # matters only for values that do not come from the batch
    return sized


def _params(node):
    return {k: v for k, v in node.params.items() if k != "shape"}


def _same_per_row(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape == b.shape:
        return a.dtype == b.dtype and bool((a == b).all() or (np.isnan(a) & np.isnan(b)).all()) \
            if a.dtype.kind in "fc" else bool((a == b).all())
    if a.ndim != b.ndim:
        return False
    for axis in (i for i in range(a.ndim) if a.shape[i] != b.shape[i]):
        if not ((a == np.take(a, [0], axis=axis)).all() and (b == np.take(b, [0], axis=axis)).all()):
            return False
        a, b = np.take(a, [0], axis=axis), np.take(b, [0], axis=axis)
    return bool((a == b).all())


def chunk_weights(full: Proof, chunks: dict, counts: dict, label="graphc.dask", where=None) -> dict:
    """``{rows: weight}`` so that the loss is ``sum(weight * chunk loss)``.

    ``chunks`` maps each chunk's row count to its :class:`Proof`, ``counts`` to
    how many chunks have it.  Each weight is ``a_N / a_r`` and must be the same
    for every term; a batch-independent term added to the loss is exact only
    when the weights sum to 1 (a mean).
    """
    weights = {}
    for rows, proof in chunks.items():
        if len(proof.terms) != len(full.terms) or proof.offset != full.offset:
            raise BatchAxisError(f"{label}: the loss has a different form for a chunk of {rows} "
                                 "rows than for the whole batch", where=where)
        ws = [f / c if c else np.nan for f, c in zip(full.terms, proof.terms)]
        if not np.isfinite(ws).all() or max(ws) - min(ws) > 1e-12 * max(abs(w) for w in ws):
            raise BatchAxisError(
                f"{label}: the loss combines sums and means over the examples (terms scale as "
                f"{', '.join(f'{w:.6g}' for w in ws)} from a chunk to the batch): no one weight "
                "per chunk makes the sum exact", where=where,
                hint="use only means or only sums of per-example terms")
        weights[rows] = ws[0]
    total = sum(weights[r] * n for r, n in counts.items())
    if full.offset and abs(total - 1.0) > 1e-12:
        raise BatchAxisError(
            f"{label}: the loss adds a term that does not depend on the batch to a sum over "
            "examples: each chunk would add it once", where=where,
            hint="use a mean over examples with the regularizer, or add the regularizer's "
                 "gradient yourself after the call")
    return weights


def batch_specs(args, batch_argnums, rows):
    """``args`` with a :class:`graphc.Spec` of ``rows`` rows at each batch position."""
    from .capture import Spec
    out = list(args)
    for i in batch_argnums:
        out[i] = Spec((rows,) + tuple(args[i].shape[1:]), np.dtype(args[i].dtype))
    return out


def prove_split(fn, args, batch_argnums, rows, label="graphc.dask", kwargs=None,
                states=None) -> dict:
    """``{chunk rows: weight}`` for chunks of ``rows`` rows (a list, in order) of the
    batch arguments at ``batch_argnums``, after proving that ``fn``'s loss is a sum
    or mean of per-example terms (:func:`graphc.batch_axis.prove`).  ``kwargs``: the
    keyword arguments (static values, NumPy arrays) passed to every chunk; ``states``, a
    dict to fill with ``{rows: (graph, the states of its outputs)}`` (graphc/dask_aux.py)."""
    from .api import trace
    from .batch_axis import prove
    from .capture import def_where
    total = int(sum(rows))
    counts = {}
    for r in rows:
        counts[int(r)] = counts.get(int(r), 0) + 1

    def graph(n):
        g = trace(fn, *batch_specs(args, batch_argnums, n), **(kwargs or {}))
        ins = {nid for nid, path in zip(g.inputs, g.signature.leaf_paths)
               if len(path) == 1 and path[0] in batch_argnums}
        return g, ins

    g_full, ins = graph(total)
    graphs, sized = {}, set()
    for r in counts:
        if r != total:
            graphs[r] = graph(r)[0]
            sized |= compare(g_full, graphs[r], label)
    full = prove(g_full, ins, frozenset(sized), label)
    proofs = {r: prove(g, ins, frozenset(compare(g_full, g, label)), label)
              for r, g in graphs.items()}
    if total in counts:
        proofs[total] = full
    if states is not None:
        from .batch_axis import output_states
        for r, g in [(total, g_full)] + list(graphs.items()):
            sz = sized if r == total else frozenset(compare(g_full, g, label))
            states[r] = (g, output_states(g, ins, frozenset(sz), label))
    return chunk_weights(full, proofs, counts, label, where=def_where(fn))
