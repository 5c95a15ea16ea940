"""Kept buffers and in-place results for the ``"array-api"`` target, on NumPy only.

A functional module allocates every large result afresh, and with glibc's malloc a
multi-megabyte array is new pages from the kernel on every call: LeNet's gradient was
1.26x the NumPy target's time, which reuses its buffers (:mod:`graphc.codegen_workspace`,
``out=``).  The array-API module gets the same reuse through helpers written into the
module (:mod:`graphc.xp_helpers`) that write into memory only when the arrays are NumPy
arrays, and are the plain functional call on every other namespace:

    add = _in_place(xp.add, xp.reshape(c1w, (6, 25)) @ reshape, xp.reshape(c1b, (1, 6, 1)))
    relu = _in_place(xp.maximum, xp.reshape(add, (64, 6, 28, 28)), 0.0)
    im2col = _stack(xp, [im2col[...] for _i in range(5) for _j in range(5)], 2, 'im2col')
    d_reshape_2 = _matmul(xp, xp.matrix_transpose(reshape_3), d_add_3, 'd_reshape_2')

- ``_in_place(f, *args, into=k)``: an elementwise result of at least ``REUSE_BYTES`` is
  written over its argument ``k`` when that argument is a fresh array of the result's
  shape and dtype that nothing reads afterwards (the NumPy target's ``out=`` reuse, also
  for an argument computed inline).
- ``_matmul`` / ``_stack``: a matrix product written as its own statement and the stack
  of convolution windows go into a buffer the module keeps between calls (one per
  thread, a new one when the shape changed) when at least ``KEEP_BYTES`` large and the
  value cannot reach the caller: not an output, and no output may share its memory
  through a view (an op whose array-API form is not known to return a fresh array).

The choices use :func:`graphc.symdims.nbytes` (0 while named dimensions are probed), so
a module with a symbolic batch size has none of them.
"""
from __future__ import annotations

import ast

from . import symdims
from .codegen_workspace import WORKSPACE_BYTES, fresh_node, reaches_caller, shares_buffer
from .ir import SUBGRAPH_OPS
from .primitive import REGISTRY

__all__ = ["KEEP_BYTES", "REUSE_BYTES", "WORKSPACE_HELPERS", "WORKSPACE_NEEDS", "use_xp_workspace"]

KEEP_BYTES = WORKSPACE_BYTES
REUSE_BYTES = 1 << 20

#: NumPy ufuncs of an op's ``inplace_ufunc`` with the same name in the standard, and the
#: operators the array-API emission writes for some of them.
_UFUNCS = frozenset("add subtract multiply divide negative maximum minimum exp log sin cos "
                    "tan tanh sqrt log1p expm1 abs".split())
_BINOPS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}

_KEPT = '''
def _kept(name, shape, dtype):
    """The NumPy buffer this function keeps for temporary ``name`` (one per thread): a
    value that never leaves the call, so the next call may overwrite it.  A new one
    when the shape changed (a module with a symbolic batch size)."""
    buf = getattr(_WORKSPACE, name, None)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        import numpy
        buf = numpy.empty(shape, dtype)
        setattr(_WORKSPACE, name, buf)
    return buf


_WORKSPACE = threading.local()
'''

_MATMUL = '''
def _matmul(xp, a, b, keep):
    """a @ b.  NumPy arrays: into the buffer kept for temporary ``keep`` (_kept), no
    fresh pages from the system on every call; other namespaces: a @ b."""
    import numpy
    if (type(a) is not numpy.ndarray or type(b) is not numpy.ndarray or a.dtype != b.dtype
            or a.ndim < 2 or b.ndim < 2):
        return a @ b
    shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    return numpy.matmul(a, b, out=_kept(keep, shape, a.dtype))
'''

_STACK = '''
def _stack(xp, arrays, axis, keep):
    """xp.stack(arrays, axis=axis).  NumPy arrays: into the buffer kept for temporary
    ``keep`` (_kept); other namespaces: xp.stack."""
    import numpy
    first = arrays[0]
    if not all(type(a) is numpy.ndarray and a.dtype == first.dtype for a in arrays):
        return xp.stack(arrays, axis=axis)
    shape = first.shape[:axis] + (len(arrays),) + first.shape[axis:]
    return numpy.stack(arrays, axis=axis, out=_kept(keep, shape, first.dtype))
'''

_IN_PLACE = '''
def _in_place(f, *args, into=0):
    """f(*args), an elementwise function of xp.  A NumPy ufunc on NumPy arrays writes
    the result over args[into], a temporary of the result's shape and dtype that dies
    here (no new memory); other namespaces: f(*args)."""
    import numpy
    if isinstance(f, numpy.ufunc) and type(args[into]) is numpy.ndarray:
        return f(*args, out=args[into])
    return f(*args)
'''

_CONTIGUOUS = '''
def _contiguous(xp, x):
    """x in C order: NumPy copies a transposed view once (numpy.ascontiguousarray), so
    the elementwise ops after it run on contiguous memory; other namespaces: x."""
    import numpy
    return numpy.ascontiguousarray(x) if type(x) is numpy.ndarray else x
'''

_UNPOOL = '''
def _unpool(xp, values, mask, image, keep=None):
    """zeros(image) with each pooling window's element (i, j) set to values where
    mask[i, j] is set (N, C, OH, OW values; a (KH, KW, N, C, OH, OW) bool mask; 0 also
    beside inf and nan, _masked_mul).  NumPy: window by window into strided slices of
    one array (the buffer kept for ``keep`` when given); other namespaces: the mask in
    the image's layout and one select."""
    import numpy
    kh, kw, n, c, oh, ow = mask.shape
    if type(values) is numpy.ndarray and type(mask) is numpy.ndarray:
        tiled = (oh * kh, ow * kw) == tuple(image[2:])
        out = _kept(keep, image, values.dtype) if keep else numpy.empty(image, values.dtype)
        if not tiled:
            out.fill(0)
        values = numpy.ascontiguousarray(values)
        for i in range(kh):
            for j in range(kw):
                numpy.multiply(values, mask[i, j], out=out[:, :, i:oh * kh:kh, j:ow * kw:kw])
        if out.size and numpy.isnan(out.max()):     # inf * 0: an unselected element is 0
            for i in range(kh):
                for j in range(kw):
                    out[:, :, i:oh * kh:kh, j:ow * kw:kw] = numpy.where(
                        mask[i, j], values, numpy.zeros((), values.dtype))
        return out
    dev = _device_of(values)
    out = xp.reshape(xp.reshape(xp.permute_dims(mask, (2, 3, 4, 0, 5, 1)), (-1,)),
                     (n, c, oh, kh, ow, kw))
    out = _masked_mul(xp, xp.reshape(values, (n, c, oh, 1, ow, 1)), out)
    out = xp.reshape(out, (n, c, oh * kh, ow * kw))
    h, w = image[2:]
    if (oh * kh, ow * kw) != (h, w):
        out = xp.concat([out, xp.zeros((n, c, h - oh * kh, ow * kw), dtype=values.dtype,
                                       device=dev)], axis=2)
        out = xp.concat([out, xp.zeros((n, c, h, w - ow * kw), dtype=values.dtype,
                                       device=dev)], axis=3)
    return out
'''

_POOL_MASK = '''
def _pool_mask(xp, x, m, kernel):
    """(KH, KW, N, C, OH, OW) bool: window element (i, j) of x (N, C, H, W) is the
    window's maximum m (N, C, OH, OW), only the first such element of a window (a tie
    goes to the first maximum).  NumPy: the comparisons written into one bool array;
    other namespaces: a stack of the comparisons."""
    kh, kw = kernel
    oh, ow = m.shape[2:]

    def window(i, j):
        return x[:, :, i:i + kh * (oh - 1) + 1:kh, j:j + kw * (ow - 1) + 1:kw]
    import numpy
    if type(x) is numpy.ndarray and type(m) is numpy.ndarray:
        out = numpy.empty((kh, kw) + m.shape, dtype=bool)
        seen = numpy.zeros(m.shape, dtype=bool)
        for i in range(kh):
            for j in range(kw):
                numpy.equal(window(i, j), m, out=out[i, j])
                numpy.greater(out[i, j], seen, out=out[i, j])   # and not seen
                seen |= out[i, j]
        return out
    hits = []
    seen = xp.zeros(m.shape, dtype=xp.bool, device=_device_of(m))
    for i in range(kh):
        for j in range(kw):
            hit = (window(i, j) == m) & ~seen
            seen = seen | hit
            hits = hits + [hit]
    return xp.reshape(xp.stack(hits), (kh, kw) + tuple(m.shape))
'''

#: The helpers' sources (:mod:`graphc.xp_helpers` writes those a module calls).
WORKSPACE_HELPERS = {"_kept": _KEPT, "_matmul": _MATMUL, "_stack": _STACK,
                     "_in_place": _IN_PLACE, "_contiguous": _CONTIGUOUS, "_unpool": _UNPOOL,
                     "_pool_mask": _POOL_MASK}
#: Helpers each of these calls.
WORKSPACE_NEEDS = {"_matmul": ("_kept",), "_stack": ("_kept",),
                   "_unpool": ("_kept", "_masked_mul", "_device_of"),
                   "_pool_mask": ("_device_of",)}


# --- which values may go where ------------------------------------------------------------
def _aliases(em, items):
    """Nodes of a fresh-result op whose array-API form returns an argument as it is
    (``xp.floor`` of integers is the integers): not fresh on this target."""
    g = em.g
    texts = {nid: em.expr[nid][0] for nid in em.expr}
    for nid, lines in items:
        name = em.name.get(nid)
        if name and len(lines) == 1 and lines[0].startswith(f"{name} = "):
            texts[nid] = lines[0][len(name) + 3:]
    out = set()
    for nid, text in texts.items():
        node = g[nid]
        if node.op in REGISTRY and any(_same(text, em.ref(a, 0)) for a in node.args):
            out.add(nid)
    return out


def _same(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a, mode="eval")) == ast.dump(ast.parse(b, mode="eval"))
    except SyntaxError:
        return False


def _fresh(g, nid, aliases) -> bool:
    return not shares_buffer(g, nid) and nid not in aliases


def _chain(g, nid):
    """``nid`` and what it is a reshape of (the memory a donor's buffer is)."""
    out = [nid]
    while g[out[-1]].op == "reshape":
        out.append(g[out[-1]].args[0])
    return out


def _statement(line, name):
    """The expression (AST) a one-line statement ``name = ...`` assigns, or None."""
    if not line.startswith(f"{name} = "):
        return None
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return None
    stmt = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
        return None
    return stmt.value


# --- the rewrites -------------------------------------------------------------------------
def use_xp_workspace(em, items):
    """Rewrite ``items`` (the body's ``(node, lines)``) in place: elementwise results over
    dead arguments first, then the kept buffers (never one a result is written over)."""
    aliases = _aliases(em, items)
    donors = _in_place_lines(em, items, aliases)
    written = {n for d in donors for n in _chain(em.g, d)}
    _kept_lines(em, items, aliases, written)


class _Uses:
    """Where each value is read: the statement it is read in (an inlined value by its
    user's), and whether its memory is read after a given statement."""

    def __init__(self, em, items, aliases):
        self.g, self.aliases = em.g, aliases
        self.stmt = {nid: i for i, (nid, _) in enumerate(items)}
        self.outputs = set(em.g.outputs)

    def at(self, nid, depth=0):
        while nid not in self.stmt:
            users = list(self.g.users(nid))
            if not users or depth > 50:
                return len(self.stmt)         # read by the return line
            nid, depth = users[0], depth + 1
        return self.stmt[nid]

    def read_after(self, nid, i, depth=0):
        if nid in self.outputs or depth > 20:
            return True
        for u in self.g.users(nid):
            if self.at(u) > i:
                return True
            if not _fresh(self.g, u, self.aliases) and self.read_after(u, i, depth + 1):
                return True
        return False


def _donor(em, uses, nid, i, a):
    """May the statement ``i`` computing ``nid`` write its result over argument ``a``?"""
    g = em.g
    node, an = g[nid], g[a]
    chain = _chain(g, a)
    return (tuple(an.shape) == tuple(node.shape) and an.dtype == node.dtype
            and fresh_node(g, a) and _fresh(g, chain[-1], uses.aliases)
            and not any(c in uses.outputs for c in chain)
            and max(uses.at(u) for u in g.users(a)) == i and not uses.read_after(a, i))


def _in_place_lines(em, items, aliases):
    """Statements of an elementwise op written as ``_in_place(xp.f, ...)``; their donors."""
    g = em.g
    uses = _Uses(em, items, aliases)
    donors = []
    for i, (nid, lines) in enumerate(items):
        node, name = g[nid], em.name.get(nid)
        prim = REGISTRY.get(node.op)
        if (name is None or prim is None or not prim.inplace_ufunc or len(lines) != 1
                or not node.shape or symdims.nbytes(node) < REUSE_BYTES):
            continue
        ufunc = prim.inplace_ufunc.removeprefix("np.")
        value = _statement(lines[0], name)
        args = _ufunc_args(value, ufunc)
        if ufunc not in _UFUNCS or args is None or not isinstance(value, ast.Call) and any(
                g.aval(a).weak for a in node.args):     # an operator on a Python number
            continue
        for a in dict.fromkeys(node.args):
            if not _donor(em, uses, nid, i, a):
                continue
            at = next((k for k, x in enumerate(args) if _same(ast.unparse(x), em.ref(a, 0))), None)
            if at is None:
                continue
            texts = [ast.get_source_segment(lines[0], x) for x in args]
            into = f", into={at}" if at else ""
            items[i] = (nid, [f"{name} = _in_place(xp.{ufunc}, {', '.join(texts)}{into})"])
            donors.append(a)
            break
    return donors


def _ufunc_args(value, ufunc):
    """The argument expressions of ``xp.<ufunc>(...)`` or of its operator, else None."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "xp" \
            and value.func.attr == ufunc and not value.keywords \
            and not any(isinstance(x, ast.Starred) for x in value.args):
        return list(value.args)
    if isinstance(value, ast.BinOp) and _BINOPS.get(type(value.op)) == ufunc:
        return [value.left, value.right]
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub) and ufunc == "negative":
        return [value.operand]
    return None


def _kept_lines(em, items, aliases, written):
    """Matrix products and window stacks that go into buffers kept between calls."""
    g = em.g
    outputs = set(g.outputs)
    for i, (nid, lines) in enumerate(items):
        node, name = g[nid], em.name.get(nid)
        if (name is None or node.op in SUBGRAPH_OPS or not node.shape
                or symdims.nbytes(node) < KEEP_BYTES or nid in written
                or reaches_caller(g, nid, outputs, aliases)):
            continue
        new = list(lines)
        for k, line in enumerate(lines):
            value = _statement(line, name)
            if k == 0 and len(lines) == 1 and node.op == "matmul" \
                    and isinstance(value, ast.BinOp) and isinstance(value.op, ast.MatMult):
                a, b = (ast.get_source_segment(line, x) for x in (value.left, value.right))
                new[k] = f"{name} = _matmul(xp, {a}, {b}, keep={name!r})"
            elif _is_stack(value):
                axis = value.keywords[0].value.value if value.keywords else 0
                arrays = ast.get_source_segment(line, value.args[0])
                new[k] = f"{name} = _stack(xp, {arrays}, {axis}, keep={name!r})"
            elif _calls(value, "_unpool", 4):
                new[k] = f"{line[:-1]}, keep={name!r})"
        items[i] = (nid, new)


def _calls(value, helper, nargs) -> bool:
    """``helper(...)`` with ``nargs`` positional arguments and no keywords."""
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == helper and len(value.args) == nargs and not value.keywords)


def _is_stack(value) -> bool:
    """``xp.stack(LIST)`` or ``xp.stack(LIST, axis=K)`` with K a non-negative number."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "xp"
            and value.func.attr == "stack" and len(value.args) == 1
            and isinstance(value.args[0], (ast.List, ast.ListComp))):
        return False
    kw = value.keywords
    return not kw or (len(kw) == 1 and kw[0].arg == "axis" and isinstance(kw[0].value, ast.Constant)
                      and isinstance(kw[0].value.value, int) and kw[0].value.value >= 0)
