"""A "same" convolution's input gradient as whole-image shifted adds.

``col2im`` adds each window position's values back into the padded image, one strided
add per position, then crops the padding (graphc/ops/conv.py)::

    d_x = np.zeros((32, 16, 18, 18), dtype=np.float32)
    for _i in range(3):
        for _j in range(3):
            d_x[:, :, _i:_i + 16, _j:_j + 16] += d_cols[:, :, :, :, _i, _j]
    d_x = d_x[:, :, 1:17, 1:17]

NumPy runs such an add as one inner loop per image row: 16 elements here, and the
loop's overhead, not the adds, takes the time (the CIFAR-sized net's conv 32->64 on
16x16 maps at batch 16: 1.9 ms of its 14 ms).  Where the convolution keeps the image
size (stride 1, no dilation, ``2·pad = kernel - 1``), the values and the image have the
same H·W layout, so a window position is one shift of the flattened image: the add
runs over whole images (H·W-long runs).  Only the values that land in the padding
would wrap into the neighbouring row instead; they are set to 0 first, in the
windows' own buffer, which is why the rewrite needs that buffer to be the code's own
(a GEMM result, through views) and to die at this statement::

    d_x = np.zeros((32, 16, 16, 16), dtype=np.float32)
    _runs = d_x.reshape(32, 16, 256)
    for _i in range(3):
        for _j in range(3):
            _win = d_cols[:, :, :, :, _i, _j].reshape(32, 16, 256)
            for _col in (range(17 - _j, 16) if _j > 1 else range(1 - _j)):
                _win[:, :, _col::16] = 0
            _shift = (_i - 1) * 16 + _j - 1
            _runs[:, :, max(_shift, 0):256 + min(_shift, 0)] += _win[:, :, max(-_shift, 0):256 - max(_shift, 0)]

Each pixel receives the same values in the same order as before, starting from +0.0
(the zeroed values only ever meet the padding, which the crop dropped, or add +0.0
where the loop above added nothing: ``x + 0.0 == x`` for every x but -0.0, which a
sum started at +0.0 never is), so the result is bit for bit the same
(tests/test_col2im_shift.py).
"""
from __future__ import annotations

from .primitive import REGISTRY

__all__ = ["ENABLED", "shifted_col2im"]

#: Off: every col2im keeps the per-row loop (tests compare the two).
ENABLED = True

_VIEWS = ("reshape", "transpose")


def _owned(g, nid, outputs, depth=0):
    """``nid`` is a view chain (reshapes, transposes, one user each) of a fresh result
    that nothing else refers to; its base, else None.  (codegen_workspace.fresh_node
    asks the same of reshapes alone, for the out= reuse; the windows here come through
    a transpose.)"""
    node = g[nid]
    if nid in outputs or depth > 8:
        return None
    prim = REGISTRY.get(node.op)
    if prim is not None and prim.fresh_result:
        return nid
    if node.op not in _VIEWS or len(list(g.users(node.args[0]))) != 1:
        return None
    return _owned(g, node.args[0], outputs, depth + 1)


def _same_size(node, cols):
    p = node.params
    image = tuple(p["image"])
    if len(image) != 4 or tuple(p["stride"]) != (1, 1) or tuple(p["dilation"]) != (1, 1):
        return False
    (oh, ow), (kh, kw) = tuple(cols.shape[2:4]), tuple(cols.shape[-2:])
    (ph, pw) = p["padding"]
    # (padding under the image size: every shift stays inside one image's H·W values,
    # so the slices below never reach a negative bound)
    return ((oh, ow) == tuple(image[2:]) and kh * kw > 1 and len(cols.shape) == 6
            and ph < image[2] and pw < image[3])


def shifted_col2im(em, items, skip=()) -> dict:
    """{statement index: new lines} for the ``col2im`` statements of same-size
    convolutions whose windows' buffer is the code's own and dies there."""
    if not ENABLED:
        return {}
    g = em.g
    outputs = set(g.outputs)
    out = {}
    for i, (nid, lines) in enumerate(items):
        node = g[nid]
        if i in skip or node.op != "col2im" or nid not in em.name:
            continue
        a = node.args[0]
        cols = g[a]
        if not _same_size(node, cols) or a not in em.name or a in em.expr:
            continue
        # the windows reach nothing else: this col2im is their one user, and each view
        # between them and the fresh result is its predecessor's only user
        if list(g.users(a)) != [nid] or _owned(g, a, outputs) is None:
            continue
        out[i] = _lines(em.name[nid], em.name[a], node, cols)
    return out


def _lines(name, cols_name, node, cols):
    n, c, h, w = node.params["image"]
    ph, pw = node.params["padding"]
    kh, kw = cols.shape[-2:]
    hw = h * w
    dt = f"np.{cols.dtype.name}"
    return [f"{name} = np.zeros({(n, c, h, w)!r}, dtype={dt})",
            f"_runs = {name}.reshape({n}, {c}, {hw})   # each image one run: a window "
            "position is one shift",
            f"for _i in range({kh}):",
            f"    for _j in range({kw}):",
            f"        _win = {cols_name}[:, :, :, :, _i, _j].reshape({n}, {c}, {hw})  "
            f"# ({cols_name} dies here)",
            f"        for _col in (range({w + pw} - _j, {w}) if _j > {pw} else range({pw} - _j)):",
            f"            _win[:, :, _col::{w}] = 0   # lands in the padding: would wrap a row",
            f"        _shift = (_i - {ph}) * {w} + _j - {pw}",
            f"        _runs[:, :, max(_shift, 0):{hw} + min(_shift, 0)] += "
            f"_win[:, :, max(-_shift, 0):{hw} - max(_shift, 0)]"]
