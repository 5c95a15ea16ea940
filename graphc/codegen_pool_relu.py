"""Max pooling after a ReLU: the ReLU runs on the pooled values, a quarter of the elements.

``max_pool(relu(z)) == relu(max_pool(z))``: the maximum selects an element (no rounding)
and ReLU is monotone, so a window's maximum after the ReLU is the ReLU of its maximum
before.  For LeNet's ``nn.max_pool2d(nn.relu(conv), 2)`` the generated code therefore pools
``z`` itself and applies ``np.maximum(pool, 0.0)`` to the pooled values instead of to the
whole image::

    relu = conv                                # the ReLU runs after the pool below
    pool = np.maximum(np.maximum(relu[:, :, 0::2, 0::2], ...), ...)
    if np.count_nonzero(pool == 0):            # a maximum of 0: the ReLU first, as written
        np.maximum(relu, 0.0, out=relu)
        pool = np.maximum(np.maximum(relu[:, :, 0::2, 0::2], ...), ...)
        _zero_ties_pool = 4
    else:                                      # max(ReLU(window)) is ReLU(max(window))
        np.maximum(pool, 0.0, out=pool)
        _zero_ties_pool = 0

**The same bits.**  A window whose maximum is positive: the same element, the same value.
A window whose maximum is negative (no 0 in it, none is a maximum of 0): every ReLU
value is the constant ``0.0``, and so is ``np.maximum(max, 0.0)``.  A nan propagates
through both orders from the same first nan (NumPy's ``maximum`` returns its nan operand,
the ReLU keeps its bits).  A window whose maximum is ``±0`` may hold ``-0.0`` and ties
of zeros whose sign NumPy's tie rule picks: there the generated code takes the order the
user wrote, for the whole call (rare, but every call of a net whose zero inputs meet a
zero bias: then the call costs what it did before, plus the pooled maximum and a count).

**The gradient.**  Max pooling's backward (graphc/codegen_pool_check.py) compares each
window position with the pooled value; it now reads ``z`` where it read ``relu(z)``:

- windows with a positive maximum match at the same positions (``z == p > 0`` exactly
  where ``relu(z) == p``);
- windows with a negative maximum (pooled value ``0``) match nowhere, where all ``K``
  zeros of ``relu(z)`` matched: the tie count allows ``K`` matches per zero window after
  the fallback above and ``0`` otherwise (``_zero_ties_pool``), and the exact rule first
  marks position ``(0, 0)`` of every window whose pooled value is ``0``, the first of
  ``K`` zeros, so its mask is the exact rule's mask of ``relu(z)`` in every window;
- windows with a nan maximum match nowhere in either order.

So the mask the unpool reads is the first-maximum mask of ``relu(z)`` wherever the exact
rule runs, and where the cheap mask runs it differs only in zero windows, whose gradient
is ``±0`` whichever element is marked (codegen_pool_check.py).  tests/test_pool_relu.py
compares the code with and without this rewrite bit for bit over ties, dead windows,
``±0``, nan and ``±inf``, and against PyTorch.

Only ``graphc.nn.relu`` is rewritten (its derivative is 0 at 0).  ``np.maximum(z, 0)``
takes its gradient through ``maximum / z`` over the full image, with half the cotangent at
``z == 0``: a different backward, left as it is.
"""
from __future__ import annotations

import re

from .codegen_forms import zero_operand

__all__ = ["relu_after_pool"]

#: the ReLU's zero as codegen writes it: the scalar, or a full zero array of the ReLU's
#: shape (graphc/codegen_forms.py, NumPy's maximum is vectorized only for two arrays)
_ZERO = r"(?:0\.0|zeros_\w+)"


def _statement(items, nid):
    return next((k for k, (n, _) in enumerate(items) if n == nid), None)


def _relu_alias(lines, rn):
    """(the statements that bind ``rn`` to ``z``'s values without the ReLU, whether the
    fallback may apply the ReLU in place, and for a layout change ``x.transpose(axes)``
    the pair (``x`` where ``rn`` is now that view, else None; ``axes``), else None) for
    the ReLU's emitted forms; else None.  A batch-last convolution's result (axes
    (3, 0, 1, 2), runs of N elements) is pooled through the view; a channel-major one is
    still copied (pooling its (1, 0, 2, 3) view measured 26 -> 36 ms on CIFAR's conv2 at
    batch 256)."""
    if len(lines) == 1:
        m = re.fullmatch(rf"{re.escape(rn)} = np\.maximum\((\w+), {_ZERO}, out=\1\)", lines[0])
        if m:                                  # in place on a dead argument's buffer
            return [f"{rn} = {m.group(1)}  # the ReLU runs after the pool below"], True, None
        m = re.fullmatch(rf"{re.escape(rn)} = np\.maximum\((.+), {_ZERO}\)", lines[0])
        if m:                                  # a new array: the fallback makes a new one
            return [f"{rn} = {m.group(1)}  # the ReLU runs after the pool below"], False, None
        return None
    if len(lines) == 2 and lines[0].startswith(f"{rn} = _buffer("):
        m = re.fullmatch(rf"np\.maximum\((.+), {_ZERO}, out={re.escape(rn)}\)", lines[1])
        t = m and re.fullmatch(r"(\w+)\.transpose\((\d(?:, \d)*)\)", m.group(1))
        axes = t and tuple(int(a) for a in t.group(2).split(", "))
        if axes == (3, 0, 1, 2):               # batch-last: pool the view, copy nothing
            return [f"{rn} = {m.group(1)}  # the ReLU runs after the pool below, on a view of "
                    f"{t.group(1)}"], False, (t.group(1), axes)
        if m:                                  # a layout copy fused into the ReLU
            return [lines[0], f"np.copyto({rn}, {m.group(1)})  # the ReLU runs after the pool below"], \
                True, axes and (None, axes)
    return None


def _only_read_by(items, rn, allowed) -> bool:
    """After the first of the statements ``allowed`` (indices), ``rn`` appears only in
    them and in ``del`` lines."""
    word = re.compile(rf"\b{re.escape(rn)}\b")
    for k, (_, lines) in enumerate(items):
        if k in allowed or k < min(allowed):
            continue
        if any(word.search(line.partition("  #")[0]) and not line.startswith("del ")
               for line in lines):
            return False
    return True


def relu_after_pool(em, items, mid, kernel):
    """Rewrite the ReLU and the max pool that the max-pool mask ``mid`` reads (module
    docstring); return (the name of the variable that holds the matches of a zero window
    (0 or K), the axes of the layout change the ReLU no longer copies through, or None),
    or None where the statements are not in the forms this module knows."""
    g = em.g
    r, p = g[mid].args
    rnode = g[r]
    if rnode.op != "relu" or r in em.outputs or set(g.users(r)) != {p, mid}:
        return None
    ir, ip, im = _statement(items, r), _statement(items, p), _statement(items, mid)
    rn, pn = em.name.get(r), em.name.get(p)
    if None in (ir, ip, im, rn, pn) or not ir < ip < im:
        return None
    alias = _relu_alias(items[ir][1], rn)
    plines = items[ip][1]
    if alias is None or not plines[0].startswith(f"{pn} = ") or rn == pn:
        return None
    rlines, in_place, view = alias
    if not _only_read_by(items, rn, {ir, ip, im}) or view and view[0] and not _only_read_by(
            items, view[0], {ir}):
        return None                            # (an out= write into it would change z)
    zr, zp = zero_operand(em, r), zero_operand(em, p)   # (codegen_forms.py: a full zero array)
    again = f"np.maximum({rn}, {zr}, out={rn})" if in_place else f"{rn} = np.maximum({rn}, {zr})"
    flag = f"_zero_ties_{pn}"
    k = kernel[0] * kernel[1]
    items[ir] = (r, rlines)
    items[ip] = (p, [
        *plines[:-1], plines[-1] + "  # the maximum of each window before the ReLU",
        f"if np.count_nonzero({pn} == 0):  # a maximum of 0 (its sign): the ReLU first, as written",
        f"    {again}", *("    " + line for line in plines), f"    {flag} = {k}",
        "else:  # max(ReLU(window)) is ReLU(max(window)): the ReLU on the pooled values",
        f"    np.maximum({pn}, {zp}, out={pn})", f"    {flag} = 0"])
    return flag, view and view[1]


def unpool_in_layout(em, items, k, axes) -> None:
    """Statement ``k`` (the unpool of the mask) allocates its image in the memory layout of
    the ReLU's input, ``x.transpose(axes)``, when its one user transposes it back
    (``d.transpose(inverse)``, a batch-last convolution's gradient, which then reshapes
    without a copy).  Its writes are strided slices of the image, whatever its layout."""
    g = em.g
    uid, lines = items[k]
    name = em.name.get(uid)
    users = list(g.users(uid))
    inverse = tuple(sorted(range(len(axes)), key=lambda a: axes[a]))
    if (name is None or len(users) != 1 or g[users[0]].op != "transpose" or uid in em.outputs
            or tuple(g[users[0]].params["axes"]) != inverse):
        return
    shape = tuple(g[uid].shape)
    m = re.fullmatch(rf"{re.escape(name)} = (_buffer\('{re.escape(name)}', |np\.(?:empty|zeros)\()"
                     rf"{re.escape(repr(shape))}(, .*\))(  # .*)?", lines[0])
    rest = re.sub(rf"\b{re.escape(name)}\[:, :, ", "", "\n".join(lines[1:]))
    if m is None or re.search(rf"\b{re.escape(name)}\b", rest):
        return                                 # (only slices of it are written)
    stored = tuple(shape[a] for a in inverse)  # x's shape: shape == stored.transpose(axes)
    items[k] = (uid, [f"{name} = {m.group(1)}{stored!r}{m.group(2)}.transpose{axes!r}"
                      f"  # in {name}.transpose{inverse!r}'s layout{(m.group(3) or '')[3:] and ': ' + m.group(3)[4:]}",
                      *lines[1:]])
