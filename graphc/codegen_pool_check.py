"""Max pooling's gradient: check that no window has a tie, then take the cheap mask.

The gradient of max pooling goes to the *first* maximal element of each window
(graphc/ops/pool.py): ``max_pool_mask`` compares each window position with the
window's maximum (``np.equal``, one call per position) and then clears every match
that an earlier position already had (``np.greater`` against ``_seen``, two more calls
per position).  Ties are rare, so the generated code counts the matches instead and
refines the mask only when some window matched more than once::

    M = np.empty((2, 2, 16, 6, 14, 14), dtype=bool)
    np.equal(relu[:, :, 0::2, 0::2], pool, out=M[0, 0])
    ...                                       # one np.equal per window position
    if np.isnan(pool.max()) or np.count_nonzero(M) != 18816:  # a tie (or a nan maximum)
        np.greater(M[0, 1], M[0, 0], out=M[0, 1])
        ...                                   # the first maximum alone, as before

A maximum that is not nan is one of its window's elements, so each window matches at
least once; a count of exactly one per window means each window matched once, and
the mask is the first-maximum mask as it is.  A nan maximum matches nothing, so it
could hide another window's tie from the count: ``pool.max()`` is nan then, and the
exact rule runs.

**After a ReLU** (LeNet's conv, ReLU, pool) the windows of a dead region are all 0 and
all tie, in nearly every call.  There the gradient is 0 anyway: max pooling's VJP
applies ReLU's mask to the pooled cotangent first (``d_pooled = d * (pool > 0)``,
graphc/passes/pool_mask.py), and an element of a window whose cotangent is 0 gets
``±0 * 1`` or ``±0 * 0``, the same bits whichever element is marked.  So when the
unpool is the mask's only user, the count allows the ``K = kh·kw`` matches of each
zero window: ``count == windows + (K - 1) · zero windows``.  With the ReLU's result
``>= 0`` (or nan, which the pooled maximum shows), a window whose maximum is 0 holds
only zeros and matches exactly ``K`` times, one with a positive maximum at least once;
so the equality means each positive window matched once.  This form also needs every
``d_pooled`` element finite (its sum, which the unpool reads anyway, is finite): then
a zero window's cotangent is ``±0`` (``d * 0`` of a finite ``d``) and the unpool takes
its multiply path, where ``±0`` times the mask gives the same bits for either mask.
Whenever a condition fails, the mask and the guards are the exact ones of before, so
every value is bit for bit what the exact rule gives (tests/test_pool_grad3.py).
"""
from __future__ import annotations

import re

from .codegen_pool_relu import relu_after_pool, unpool_in_layout
from .ops.pool import _pool_slice

__all__ = ["pool_check"]

POOL_RELU = True     # the ReLU before a pool runs on the pooled values (codegen_pool_relu.py)
_VALUES = re.compile(r"_values = np\.ascontiguousarray\((\w+)\)$")
_FINITE = "_finite = np.isfinite(_values.sum())"


def _mask_lines(x, m, out, kernel, hw, ohw):
    """(the ``np.equal`` lines, the lines that keep the first maximum alone)."""
    pos = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]

    def equal(i, j):
        return f"np.equal({_pool_slice(x, i, j, kernel, ohw, hw)}, {m}, out={out}[{i}, {j}])"

    def first(i, j, seen, note=""):
        return f"np.greater({out}[{i}, {j}], {seen}, out={out}[{i}, {j}]){note}"
    if len(pos) <= 4:
        equals = [equal(i, j) for i, j in pos]
    else:
        equals = [f"for _i in range({kernel[0]}):", f"    for _j in range({kernel[1]}):",
                  f"        {equal('_i', '_j')}"]
    (i0, j0), (i1, j1) = pos[0], pos[1]
    refine = [first(i1, j1, f"{out}[{i0}, {j0}]", "  # and not before: a tie goes to the first maximum")]
    if len(pos) > 2:
        refine.append(f"_seen = {out}[{i0}, {j0}] | {out}[{i1}, {j1}]")
        middle = pos[2:-1]
        if len(middle) == 1:
            (i, j), = middle
            refine += [first(i, j, "_seen"), f"_seen |= {out}[{i}, {j}]"]
        elif middle:
            refine += [f"for _i, _j in {tuple(middle)!r}:", f"    {first('_i', '_j', '_seen')}",
                       f"    _seen |= {out}[_i, _j]"]
        refine.append(first(*pos[-1], "_seen"))
    return equals, refine


def _zero(g, nid) -> bool:
    node = g[nid]
    return node.op == "const" and not node.shape and node.value == 0


def _relu_form(em, items, i):
    """``(v name, v lines, unpool lines)`` when statement ``i`` (a max-pool mask of a ReLU's
    result) is followed at once by ``d_pooled = masked_mul(d, pool > 0)`` and the unpool
    of ``d_pooled`` through the mask, the mask's only use; else None."""
    g = em.g
    mid = items[i][0]
    x, m = g[mid].args
    users = list(g.users(mid))
    if g[x].op != "relu" or len(users) != 1 or i + 2 >= len(items) or mid in em.outputs:
        return None
    (vid, vlines), (uid, ulines) = items[i + 1], items[i + 2]
    if uid != users[0] or g[uid].op != "unpool" or tuple(g[uid].args) != (vid, mid):
        return None
    vnode = g[vid]
    if vnode.op != "masked_mul" or g[vnode.args[1]].op != "gt":
        return None
    gt = g[vnode.args[1]]
    vname = em.name.get(vid)
    if gt.args[0] != m or not _zero(g, gt.args[1]) or vname is None or len(vlines) != 3:
        return None
    if not (vlines[0].startswith(f"{vname} = ") and vlines[1].startswith(f"if np.isnan({vname}.max()):")
            and vlines[2].startswith("    np.copyto(")):
        return None
    values = [k for k, line in enumerate(ulines) if _VALUES.match(line)]
    if (len(values) != 1 or _VALUES.match(ulines[values[0]]).group(1) != vname
            or ulines[values[0] + 1] != _FINITE or ulines.count(_FINITE) != 1):
        return None
    return vname, vlines, ulines


def pool_check(em, items) -> None:
    """Rewrite ``items`` (codegen's ``(nid, lines)`` statements) in place: each max-pool
    mask of two or more window positions refines its ``x == max`` mask only when the
    count of matches shows a tie (module docstring)."""
    g = em.g
    for i, (nid, lines) in enumerate(items):
        node = g[nid]
        if node.op != "max_pool_mask":
            continue
        kernel = tuple(node.params["kernel"])
        name = em.name.get(nid)
        if kernel[0] * kernel[1] < 2 or name is None or not lines[0].startswith(f"{name} = "):
            continue
        x, m = node.args
        if g[m].op != "max_pool" or tuple(g[m].args) != (x,) or tuple(g[m].params["kernel"]) != kernel:
            continue                          # (the proof needs m to be the windows' maximum)
        xs, ms = em.ref(x, 100), em.ref(m, 100)
        windows = g[m].aval.size
        equals, refine = _mask_lines(xs, ms, name, kernel, g[x].shape[2:], g[m].shape[2:])
        relu = _relu_form(em, items, i)
        if relu is None:
            items[i] = (nid, [lines[0], *equals,
                              f"if np.isnan({ms}.max()) or np.count_nonzero({name}) != {windows}:"
                              "  # a tie or a nan maximum: the first maximum alone",
                              *("    " + line for line in refine)])
            continue
        vname, vlines, ulines = relu
        values = next(line for line in ulines if _VALUES.match(line))
        k = kernel[0] * kernel[1]
        ties, axes = (relu_after_pool(em, items, nid, kernel) if POOL_RELU else None) or (None, None)
        # ReLU's mask, named to be counted too (the same multiply: the same bits)
        pos = re.fullmatch(rf"({re.escape(vname)} = .+ \* )\({re.escape(ms)} > 0\)", vlines[0])
        head = [f"_pos = {ms} > 0", pos.group(1) + "_pos"] if pos else [vlines[0]]
        positive = "_pos" if pos else f"{ms} > 0"
        items[i] = (nid, [lines[0], *equals])
        if ties is None:
            check = [f"# with a positive max matched once (a ReLU's zero windows match {k} times, and get 0",
                     "# whichever element is marked); else (a tie, inf or nan) the exact rule:",
                     f"if (not _finite or np.isnan({ms}.max())",
                     f"        or np.count_nonzero({name}) != {windows} + {k - 1} * ({windows} - "
                     f"np.count_nonzero({positive}))):"]
        else:                                 # graphc/codegen_pool_relu.py: x is the ReLU's input
            check = [f"# with a positive max matched once (a zero window matches {ties} times: {k} if the",
                     "# ReLU ran first, else 0; it gets 0 whichever element is marked); else (a tie,",
                     "# inf or nan) the exact rule:",
                     f"if (not _finite or np.isnan({ms}.max())",
                     f"        or np.count_nonzero({name}) != {ties} * {windows} + (1 - {ties}) * "
                     f"np.count_nonzero({positive})):",
                     f"    np.logical_or({name}[0, 0], {ms} == 0, out={name}[0, 0])  # a zero window's "
                     "first element: the first of the ReLU's zeros"]
        items[i + 1] = (items[i + 1][0], [
            *head, values, _FINITE,
            "# where the gradient is not 0, x == max is the first-maximum mask when each window",
            *check,
            *("    " + line for line in refine),
            *("    " + line for line in vlines[1:]),
            "        " + values, "        " + _FINITE])
        items[i + 2] = (items[i + 2][0], [line for line in ulines if line not in (values, _FINITE)])
        if axes:                              # graphc/codegen_pool_relu.py
            unpool_in_layout(em, items, i + 2, axes)
