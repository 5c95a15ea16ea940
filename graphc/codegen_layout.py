"""A layout change and the elementwise op that reads it, in one pass.

A convolution in the batch-last or channel-major layout returns NCHW through
``contiguous`` (``np.ascontiguousarray`` of a transposed view), and the ReLU that
follows reads that copy once:

    relu_1 = np.maximum(np.ascontiguousarray(conv.transpose(1, 0, 2, 3)), 0.0)

two passes and two fresh arrays where one will do: a ufunc writes C order into an
``out=`` array whatever the layout of its inputs, so

    relu_1 = np.empty((256, 64, 16, 16), dtype=np.float32)
    np.maximum(conv.transpose(1, 0, 2, 3), 0.0, out=relu_1)

gives the same values bit for bit (the same ufunc on the same elements, in the result's
dtype) in one pass (the CIFAR-sized net's conv2 at batch 256: 10.3 -> 5.4 ms on one
thread, docs/performance.md "Convolutions at batch 256").  The allocation is the form the
workspace keeps between calls when the value cannot reach the caller
(graphc/codegen_workspace.py).

Only a large result (``_FUSE_BYTES``) of an op with an ``inplace_ufunc`` whose argument is
an inlined, single-use ``contiguous`` of the result's own shape and dtype qualifies.
"""
from __future__ import annotations

from . import symdims
from .codegen_forms import full_operand_args
from .primitive import REGISTRY

__all__ = ["fuse_layout_copies"]

_FUSE_BYTES = 1 << 17          # as the codegen's out= reuse (codegen._REUSE_BYTES)


def _layout_arg(em, node):
    """The argument of ``node`` that is an inlined ``contiguous`` copy it alone reads,
    of ``node``'s shape and dtype; None when there is none."""
    g = em.g
    for a in node.args:
        an = g[a]
        if (an.op == "contiguous" and a in em.expr and a not in em.name
                and em.edge_count.get(a, 0) == 1
                and tuple(an.shape) == tuple(node.shape) and an.dtype == node.dtype):
            return a
    return None


def fuse_layout_copies(em, items, skip=()):
    """{statement index: new lines} for the elementwise statements that read a layout
    copy (``contiguous``) of their own shape: the ufunc writes into a fresh C-order
    array of the result's dtype, reading the view itself.  ``skip``: statements
    another rewrite already took (the codegen's out= reuse)."""
    g = em.g
    out = {}
    for i, (nid, lines) in enumerate(items):
        if i in skip or len(lines) != 1:
            continue
        node = g[nid]
        prim = REGISTRY.get(node.op)
        name = em.name.get(nid)
        if (prim is None or prim.inplace_ufunc is None or name is None or not node.shape
                or symdims.nbytes(node) < _FUSE_BYTES
                or not lines[0].startswith(f"{name} = ")):
            continue
        a = _layout_arg(em, node)
        if a is None:
            continue
        view = g[a].args[0]
        args = [em.ref(view if x == a else x, 0) for x in node.args] + list(prim.inplace_extra_args)
        args = full_operand_args(em, nid, args, any_layout=True)
        out[i] = [f"{name} = np.empty({tuple(node.shape)!r}, dtype=np.{node.dtype.name})",
                  f"{prim.inplace_ufunc}({', '.join(args)}, out={name})"]
    return out
