"""A workspace per compiled function: large temporaries keep their memory between calls.

With glibc's default malloc a multi-megabyte NumPy temporary goes back to the operating
system when it is freed and is page-faulted in again on the next call (about 1 ms per
4 MB): on LeNet the window matrices of the two convolutions alone were 6.5 MB of fresh
pages per call.  The generated code therefore writes the largest temporaries into
buffers it keeps (one set per thread, in a ``threading.local``) instead of fresh arrays:

    reshape = _buffer('reshape', (64, 25, 784), np.float32)  # kept between calls
    np.copyto(reshape.reshape(64, 1, 5, 5, 28, 28), im2col.transpose(0, 1, 4, 5, 2, 3))
    d_cols = np.matmul(w.T, d_out, out=_buffer('d_cols', (150, 6400), np.float32))

Four forms qualify, each only at the top level of the function, at least
``WORKSPACE_BYTES`` large, and only when the value cannot reach the caller:

- the copy that materializes convolution windows (a reshape of a transposed ``im2col``
  view, which always copies);
- a matrix product written as its own statement, or with a bias added to it
  (``(w @ cols + b).reshape(...)``, a convolution's GEMM: the product into the buffer,
  then ``+=`` the bias);
- an emission that starts by allocating the node's own array (``np.empty`` / ``np.zeros``,
  e.g. the gradient of max pooling): it takes the kept buffer (zeroed again for zeros).

"Cannot reach the caller": the value is not an output, and no output can share its
memory, through a view (any op not known to return a fresh array), an in-place write
(``setitem``), or an elementwise result written into it (``out=``, the codegen's reuse of
a dead argument, which is never allowed to pick a workspace buffer).  A result the caller
receives is therefore never a buffer the next call overwrites.
"""
from __future__ import annotations

import numpy as np

import re

from . import symdims
from .codegen_col2im import shifted_col2im
from .codegen_layout import fuse_layout_copies
from .codegen_pool_check import pool_check
from .codegen_share_check import share_check_on_sum
from .primitive import REGISTRY

__all__ = ["WORKSPACE_BYTES", "WORKSPACE_HELPERS", "fresh_node", "reaches_caller", "shares_buffer",
           "use_workspace", "workspace_lines"]

# glibc's default M_MMAP_THRESHOLD: in a process whose allocator was not tuned, blocks from
# this size are mmap'ed and faulted in again on every call (and a kept buffer is never freed,
# so glibc's adaptive threshold never rises above it); LeNet at batch 16 has 0.2-0.9 MB
# temporaries (docs/performance.md, "Convolutions at small batch").
WORKSPACE_BYTES = 1 << 17

WORKSPACE_HELPERS = '''
_WORKSPACE = threading.local()


def _buffer(name, shape, dtype):
    """The buffer this function keeps for temporary ``name`` (one per thread): a
    temporary that never leaves the call, so the next call may overwrite it.
    A new one when the shape changed (a module with a symbolic batch size)."""
    buf = getattr(_WORKSPACE, name, None)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = np.empty(shape, dtype)
        setattr(_WORKSPACE, name, buf)
    return buf
'''


def fresh_node(g, nid, depth=0) -> bool:
    """``nid``'s value is a buffer nothing else refers to: a fresh result, or a reshape
    of one that has no other user (``(w @ cols + b).reshape(...)``).  The codegen's reuse
    of a dead argument (``out=``) accepts such donors."""
    prim = REGISTRY.get(g[nid].op)
    if prim is not None and prim.fresh_result:
        return True
    if g[nid].op != "reshape" or depth > 8:
        return False
    a = g[nid].args[0]
    # The base must be dead too: a returned base would change under a write into its
    # reshape (tests/test_reuse_outputs.py).
    return (len(list(g.users(a))) == 1 and a not in g.outputs
            and fresh_node(g, a, depth + 1))


def use_workspace(em, items, reused) -> list:
    """Rewrite ``items`` in place: first the codegen's reuse of dead arguments
    (``reused``: {statement index: (donor name, new text)}), then an elementwise op
    reading a layout copy in one pass (graphc/codegen_layout.py), a same-size
    convolution's col2im as whole-image shifts (graphc/codegen_col2im.py), then the statements that
    :func:`workspace_lines` moves into kept buffers, then a ReLU gradient's nan check
    onto the sum that follows it (graphc/codegen_share_check.py), whose moved statements
    it returns (:func:`share_check_on_sum`), and max pooling's first-maximum mask
    checked for ties before it is refined (graphc/codegen_pool_check.py)."""
    for i, (donor, text) in reused.items():
        items[i] = (items[i][0], [text])
    for i, lines in fuse_layout_copies(em, items, reused).items():   # graphc/codegen_layout.py
        items[i] = (items[i][0], lines)
    for i, lines in shifted_col2im(em, items, reused).items():       # graphc/codegen_col2im.py
        items[i] = (items[i][0], lines)
    donors = _caller_donors(em, items, reused)
    for i, lines in workspace_lines(em, items, donors).items():
        items[i] = (items[i][0], lines)
    moved = share_check_on_sum(em, items)
    pool_check(em, items)
    return moved


def _caller_donors(em, items, reused):
    """The donors of the out= reuse whose buffer may reach the caller: the result written
    into it (or a result written into that one in turn, ...) reaches the caller.  The
    others, such as a convolution's GEMM result that its ReLU overwrites when neither
    is returned, may still be kept buffers."""
    g, outputs = em.g, set(em.g.outputs)
    result_in = {d: items[i][0] for i, (d, _) in reused.items()}   # donor name -> result

    def reaches(name):
        seen, todo = set(), [name]
        while todo:
            name = todo.pop()
            if name not in result_in or name in seen:
                continue
            seen.add(name)
            if reaches_caller(g, result_in[name], outputs):
                return True
            # the result, or a view of it (a reshape), may be a donor in turn
            todo += [em.name[v] for v in _views(g, result_in[name]) if v in em.name]
        return False
    return {d for d in result_in if reaches(d)}


def _views(g, nid):
    """``nid`` and the values that share its memory (views of views, ...)."""
    out, todo = [nid], [nid]
    while todo:
        for u in g.users(todo.pop()):
            if shares_buffer(g, u) and u not in out:
                out.append(u)
                todo.append(u)
    return out


def shares_buffer(g, user) -> bool:
    """May ``user``'s result share its argument's memory (a view or an in-place write)?"""
    op = g[user].op
    prim = REGISTRY.get(op)
    return op == "setitem" or prim is None or not prim.fresh_result


def reaches_caller(g, nid, outputs, aliases=frozenset(), depth=0) -> bool:
    """May ``nid``'s memory be (part of) something the caller receives?  ``aliases``:
    nodes whose variable another value's statement took over (the array-API target's
    in-place helpers), which share memory whatever their op's record says."""
    if nid in outputs or depth > 50:
        return True
    return any((shares_buffer(g, u) or u in aliases)
               and reaches_caller(g, u, outputs, aliases, depth + 1) for u in g.users(nid))


def _window_copy(g, node) -> bool:
    """A reshape of (transposes of) an ``im2col`` view: always a copy."""
    if node.op != "reshape":
        return False
    a = node.args[0]
    while g[a].op == "transpose":
        a = g[a].args[0]
    return g[a].op == "im2col"


_ALLOC = re.compile(r"(\w+) = np\.(empty|zeros)\((\([\d, ]*\)), dtype=(?:np\.)?(\w+)\)$")


def _alloc_lines(name, node, lines, buf):
    """An emission that starts by allocating the node's own array (``np.empty`` or
    ``np.zeros`` of its shape and dtype) takes the kept buffer instead (zeroed again)."""
    m = _ALLOC.match(lines[0])
    if (m is None or m.group(1) != name or m.group(3) != repr(tuple(node.shape))
            or m.group(4) != node.dtype.name):
        return None
    first = [f"{name} = {buf}  # kept between calls"]
    if m.group(2) == "zeros":
        first.append(f"{name}.fill(0)")
    return first + list(lines[1:])


def _nbytes(node):
    # symdims.nbytes: 0 while named dimensions are probed, so a module with a symbolic
    # batch size makes the same (no-workspace) choice at every probe size.
    return symdims.nbytes(node)


def workspace_lines(em, items, donors=()):
    """{statement index: new lines} for the temporaries that go into workspace buffers.

    ``donors`` are the names the reuse pass writes other results into (never a buffer).
    """
    g = em.g
    outputs = set(g.outputs)
    by_name = {v: k for k, v in em.name.items()}
    written = set()                    # donors, and what they are reshapes of
    for d in donors:
        nid = by_name.get(d)
        while nid is not None and nid not in written:
            written.add(nid)
            nid = g[nid].args[0] if g[nid].op == "reshape" else None
    out = {}
    for i, (nid, lines) in enumerate(items):
        node = g[nid]
        name = em.name.get(nid)
        if (name is None or not lines or not node.shape or _nbytes(node) < WORKSPACE_BYTES
                or not lines[0].startswith(f"{name} = ") or nid in written
                or reaches_caller(g, nid, outputs)):
            continue
        dt = "bool" if node.dtype == np.bool_ else f"np.{node.dtype.name}"
        buf = f"_buffer({name!r}, {tuple(node.shape)!r}, {dt})"
        if (alloc := _alloc_lines(name, node, lines, buf)) is not None:
            out[i] = alloc
        elif len(lines) != 1:
            continue
        elif _window_copy(g, node):
            src = g[node.args[0]]
            out[i] = [f"{name} = {buf}  # kept between calls",
                      f"np.copyto({name}.reshape{tuple(src.shape)!r}, {em.ref(node.args[0], 0)})"]
        elif node.op == "matmul" and all(g[a].dtype == node.dtype for a in node.args):
            a, b = (em.ref(x, 0) for x in node.args)
            out[i] = [f"{name} = np.matmul({a}, {b}, out={buf})"]
        elif (lines := _gemm_bias_lines(em, nid, name)) is not None:
            out[i] = lines
    return out


def _inlined(em, nid):
    return nid in em.expr and nid not in em.name and em.edge_count.get(nid, 0) == 1


def _gemm_bias_lines(em, nid, name):
    """``(a @ b + bias).reshape(...)`` (a convolution's GEMM and its bias): the product
    into a kept buffer and the bias added there, the same two float32 operations
    (NumPy adds into the product's temporary in place) without the fresh product."""
    g, node, shape = em.g, em.g[nid], None
    if node.op == "reshape" and _inlined(em, node.args[0]):
        shape, nid = tuple(node.shape), node.args[0]
        node = g[nid]
    if node.op != "add" or len(node.args) != 2:
        return None
    for m, bias in (node.args, node.args[::-1]):
        mm = g[m]
        if (mm.op == "matmul" and _inlined(em, m) and tuple(mm.shape) == tuple(node.shape)
                and all(g[x].dtype == node.dtype for x in (m, bias, *mm.args))):
            dt = f"np.{node.dtype.name}"
            a, b = (em.ref(x, 0) for x in mm.args)
            lines = [f"{name} = np.matmul({a}, {b}, "
                     f"out=_buffer({name!r}, {tuple(node.shape)!r}, {dt}))  # kept between calls",
                     f"{name} += {em.ref(bias, 0)}"]
            return lines + ([f"{name} = {name}.reshape{shape!r}"] if shape is not None else [])
    return None
