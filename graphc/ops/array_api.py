"""Array-API emissions (``array_api=`` of the records) that are more than one template.

Each function is the ``"array-api"`` counterpart of a record's NumPy emitter, with
the same ``(e: Emit, **params)`` call: it writes functional code against ``xp``
(no ``out=``, no in-place writes, no methods), with the study's portable
replacements (docs/architecture.md, "Array-API emission"): scatter-add through the
module's per-namespace ``_scatter_add``, convolution windows as a stack of strided
slices instead of ``sliding_window_view``, padding by concatenation, ``col2im`` as
a sum of padded windows, dropout's mask from a counter-based hash.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..xp_emit import xp_dtype

__all__ = ["reshape", "transpose", "concatenate", "reduce", "bool_reduce", "arg_reduce",
           "getitem", "scatter_add", "setitem", "put_along_axis", "log_softmax", "masked_mul",
           "bernoulli", "round_", "rint", "fmod", "step", "reciprocal", "cumulative", "im2col", "col2im", "max_pool", "max_pool_mask",
           "unpool", "pool_select", "argsort", "partition_perm", "slogdet", "cholesky", "tril_scaled",
           "logaddexp_weight", "heaviside", "fmax", "fmin"]


def _axis(axis):
    return axis[0] if len(axis) == 1 else tuple(axis)


def reshape(e, *, shape):
    return f"xp.reshape({e.args[0]}, {tuple(shape)!r})"


def transpose(e, *, axes):
    if len(axes) == 2 and tuple(axes) == (1, 0):
        return f"xp.matrix_transpose({e.args[0]})"
    return f"xp.permute_dims({e.args[0]}, {tuple(axes)!r})"


def concatenate(e, *, axis):
    return f"xp.concat([{', '.join(e.args)}], axis={axis})"


def reduce(name):
    def emit(e, *, axis, keepdims):
        kw = [f"axis={_axis(axis)!r}"] if tuple(axis) != tuple(range(len(e.avals[0].shape))) \
            or keepdims else []
        if keepdims:
            kw.append("keepdims=True")
        x = e.args[0]
        if name == "sum" and e.aval.dtype != e.avals[0].dtype:   # np.sum of bools, int32
            x = f"xp.astype({x}, {xp_dtype(e.aval.dtype)})"
        return f"xp.{name}({', '.join([x] + kw)})"
    return emit


def bool_reduce(name):
    def emit(e, *, axis, keepdims):
        kw = ", keepdims=True" if keepdims else ""
        return f"xp.{name}({e.args[0]}, axis={_axis(axis)!r}{kw})"
    return emit


def arg_reduce(name):
    def emit(e, *, axis):
        return f"xp.{name}({e.args[0]}, axis={axis!r})"
    return emit


def cumulative(name):
    def emit(e, *, axis):
        return f"xp.{name}({e.args[0]}, axis={axis})"
    return emit


# --- indexing -------------------------------------------------------------------------
def _slice_text(item):
    start, stop, step = item[1:]
    s = f"{'' if start is None else start}:{'' if stop is None else stop}"
    return s + (f":{step}" if step is not None else "")


def _flip_negative_steps(x, spec, shape_of):
    """A slice with a negative step as a flip and a positive step (PyTorch has no
    negative steps): ``x[5:0:-2]`` is ``xp.flip(x)[dim-1-5 :: 2]`` bounded likewise."""
    out, flips, axis = [], [], 0
    n_axes = sum(it[0] in ("slice", "int", "array") for it in spec)
    for it in spec:
        if it[0] == "ellipsis":
            axis += len(shape_of) - n_axes
        elif it[0] == "slice" and it[3] is not None and it[3] < 0:
            dim = shape_of[axis]
            picked = range(*slice(*it[1:]).indices(dim))
            if len(picked):
                first, last = dim - 1 - picked[0], dim - 1 - picked[-1]
                it = ("slice", first, last + 1, -it[3] if -it[3] != 1 else None)
            else:
                it = ("slice", 0, 0, None)
            flips.append(axis)
        if it[0] in ("slice", "int", "array"):
            axis += 1
        out.append(it)
    if not flips:
        return x, spec
    ax = flips[0] if len(flips) == 1 else tuple(flips)
    return f"xp.flip({x}, axis={ax!r})", out


def _index(x, spec, arrays, shape_of, idx_shapes=None):
    """``x[spec]`` in the standard's forms: basic indexing (slices, ints, None, ...),
    integer arrays on every axis, or one integer array among full slices (``xp.take``)."""
    kinds = [item[0] for item in spec]
    if "array" not in kinds:
        x, spec = _flip_negative_steps(x, spec, shape_of)
        parts = [_slice_text(it) if it[0] == "slice" else str(it[1]) if it[0] == "int"
                 else "None" if it[0] == "none" else "..." for it in spec]
        if "ellipsis" not in kinds and sum(k in ("slice", "int") for k in kinds) < len(shape_of):
            parts.append("...")
        return f"{x}[{', '.join(parts) or '...'}]"
    if all(k in ("array", "int") for k in kinds) and len(spec) == len(shape_of):
        # x[i, j] through _at: Dask has no such indexing (graphc/ops/xp_index.py)
        keys = ", ".join(arrays[it[1]] if it[0] == "array" else str(it[1]) for it in spec)
        return f"_at(xp, {x}, {keys})"
    full = [k == "slice" and it[1:] == (None, None, None) for k, it in zip(kinds, spec)]
    if kinds.count("array") == 1 and all(f or k == "array" for f, k in zip(full, kinds)) \
            and "none" not in kinds and "ellipsis" not in kinds:
        at = kinds.index("array")
        if idx_shapes is not None and len(idx_shapes[spec[at][1]]) != 1:
            # xp.take wants a 1-d index: take the flattened one, then unflatten it
            shape = shape_of[:at] + tuple(idx_shapes[spec[at][1]]) + shape_of[at + 1:]
            return (f"xp.reshape(xp.take({x}, xp.reshape({arrays[spec[at][1]]}, (-1,)), "
                    f"axis={at}), {shape!r})")
        return f"xp.take({x}, {arrays[spec[at][1]]}, axis={at})"
    if idx_shapes is None:
        raise UnsupportedError("this indexing (integer arrays mixed with slices, None or several "
                               "arrays that do not index every axis) has no array-API form",
                               hint="index every axis with integer arrays, or one axis with one "
                                    "1-d integer array and the others with ':'")
    from .xp_index import advanced_index
    return advanced_index(x, spec, arrays, shape_of, idx_shapes)


def getitem(e, *, spec):
    return _index(e.atoms[0], spec, e.args[1:], tuple(e.avals[0].shape),
                  [a.shape for a in e.avals[1:]])


def _positions(shape, spec, arrays, out, idx_avals):
    """Lines binding ``_pos`` to the flat positions in ``zeros(shape)`` that ``spec`` selects."""
    n = int(np.prod(shape, dtype=np.int64))
    grid = f"xp.reshape(xp.arange({n}, device=_device), " \
           f"{tuple(shape)!r})"
    return n, f"xp.reshape({_index(grid, spec, arrays, tuple(shape), [a.shape for a in idx_avals])}, (-1,))"


def _flat_values(v, aval, sel, dtype):
    """``v`` broadcast to the selection's shape, flattened, in the result's dtype."""
    if tuple(aval.shape) != tuple(sel):
        v = f"xp.broadcast_to({v}, {tuple(sel)!r})"
    v = f"xp.reshape({v}, (-1,))"
    return v if aval.dtype == dtype else f"xp.astype({v}, {xp_dtype(dtype)})"


def scatter_add(e, *, spec, shape, unique=False):
    arrays = e.args[1:]
    n, pos = _positions(shape, spec, arrays, e.args[0], e.avals[1:])
    uniq = ", unique=True" if unique or not any(it[0] == "array" for it in spec) else ""
    values = _flat_values(e.args[0], e.avals[0], _sel_shape(shape, spec, e.avals[1:]),
                          e.aval.dtype)
    return [f"_pos = {pos}",
            f"{e.out} = xp.reshape(_scatter_add(xp, {n}, _pos, {values}{uniq}), "
            f"{tuple(shape)!r})"]


def _sel_shape(shape, spec, idx_avals):
    """The shape ``zeros(shape)[spec]`` has (NumPy's rules, computed on a dummy)."""
    dummy = np.zeros(shape, dtype=np.int8)
    key = []
    for it in spec:
        if it[0] == "slice":
            key.append(slice(*it[1:]))
        elif it[0] == "int":
            key.append(it[1])
        elif it[0] == "none":
            key.append(None)
        elif it[0] == "ellipsis":
            key.append(Ellipsis)
        else:
            key.append(np.zeros(idx_avals[it[1]].shape, dtype=np.intp))
    return tuple(int(d) for d in dummy[tuple(key)].shape)


def setitem(e, *, spec):
    shape = e.avals[0].shape
    n, pos = _positions(shape, spec, e.args[2:], e.args[0], e.avals[2:])
    sel = _sel_shape(shape, spec, e.avals[2:])
    flat = f"xp.reshape({e.atoms[0]}, (-1,))"
    lines = [f"_pos = {pos}"]
    m = n
    if any(it[0] == "array" for it in spec):
        # a repeated position: the last write wins (as in NumPy); the earlier ones go
        # to a spare slot n, dropped below
        lines.append(f"_pos = _last_writes(xp, _pos, {n})")
        m = n + 1
    return lines + [
        f"_hit = _scatter_add(xp, {m}, _pos, xp.ones(({int(np.prod(sel))},), dtype=xp.int8, "
        f"device=_device), unique=True)[:{n}] != 0",
        f"{e.out} = _scatter_add(xp, {m}, _pos, {_flat_values(e.args[1], e.avals[1], sel, e.aval.dtype)}, "
        f"unique=True)[:{n}]",
        f"{e.out} = xp.reshape(xp.where(_hit, {e.out}, {flat}), {tuple(shape)!r})"]


def put_along_axis(e, *, shape, axis):
    if e.avals[1].shape[axis] != 1:
        raise UnsupportedError("put_along_axis with several values per row has no array-API "
                               "form here", hint='use target="numpy"')
    line = [1] * len(shape)
    line[axis] = shape[axis]
    dev = "device=_device"
    return (f"xp.where(xp.reshape(xp.arange({shape[axis]}, {dev}), {tuple(line)!r}) == "
            f"{e.args[1]}, {e.args[0]}, xp.zeros({tuple(shape)!r}, dtype={xp_dtype(e.aval.dtype)}, "
            f"{dev}))")


# --- activations, masks, random -----------------------------------------------------------
def log_softmax(e, *, axis):
    kw = f"axis={axis}, keepdims=True"
    return [f"{e.out} = {e.args[0]} - xp.max({e.args[0]}, {kw})",
            f"{e.out} = {e.out} - xp.log(xp.sum(xp.exp({e.out}), {kw}))"]


def masked_mul(e):
    x, w = e.atoms
    wa = e.avals[1]
    if not (e.avals[0].weak or wa.weak):
        return f"_masked_mul(xp, {e.args[0]}, {e.args[1]})"
    if wa.dtype.kind == "b":
        raise UnsupportedError("a Python bool mask has no array-API form here",
                               hint="use an array mask")
    # inf * 0 = nan: an unselected element's gradient is exactly 0
    return f"xp.where({w} == 0, 0.0, {x} * {w})"


def bernoulli(e, *, shape, rate):
    return f"_keep_mask(xp, {e.args[0]}, {tuple(shape)!r}, {rate!r}, _device)"


def round_(e, *, decimals):
    x = e.args[0]
    if e.avals[0].dtype.kind in "biu":
        if decimals >= 0:
            return f"{e.atoms[0]}"
        raise UnsupportedError("rounding integers to negative decimals has no array-API form")
    if not decimals:
        return f"xp.round({x})"
    if decimals > 0:        # NumPy's own algorithm: rint(x * 10**d) / 10**d
        return f"xp.round({e.atoms[0]} * {10.0 ** decimals!r}) / {10.0 ** decimals!r}"
    return f"xp.round({e.atoms[0]} / {10.0 ** -decimals!r}) * {10.0 ** -decimals!r}"


def rint(e):
    if e.avals[0].dtype != e.aval.dtype:       # np.rint of integers is a float
        return f"xp.round(xp.astype({e.args[0]}, {xp_dtype(e.aval.dtype)}))"
    return f"xp.round({e.args[0]})"


def fmod(e):
    """C's remainder (sign of x) from the standard's (sign of y): on magnitudes they agree."""
    x, y = e.atoms
    ax, ay = [f"abs({a})" if av.weak else f"xp.abs({a})" for a, av in zip((x, y), e.avals)]
    return f"xp.where({x} < 0, -xp.remainder({ax}, {ay}), xp.remainder({ax}, {ay}))"


def step(name):
    """floor, ceil, trunc: integers and bools keep their values (and dtype)."""
    def emit(e):
        if e.avals[0].dtype.kind in "biu" and e.aval.dtype == e.avals[0].dtype:
            return e.atoms[0]
        return f"xp.{name}({e.args[0]})"
    return emit


def reciprocal(e):
    if e.aval.dtype.kind in "iu":            # C's 1 / x on integers: 0 unless |x| == 1
        x = e.atoms[0]
        return f"xp.where(xp.abs({x}) == 1, {x}, xp.zeros_like({x}))"
    return f"1.0 / {e.atoms[0]}"


def heaviside(e):
    x, h = e.atoms
    dt = xp_dtype(e.aval.dtype)
    return (f"xp.where(xp.isnan({x}), {x}, xp.where({x} < 0, xp.asarray(0.0, dtype={dt}), "
            f"xp.where({x} > 0, xp.asarray(1.0, dtype={dt}), {h})))")


def _fminmax(fn):
    def emit(e):
        x, y = e.atoms
        return f"xp.where(xp.isnan({y}), {x}, xp.where(xp.isnan({x}), {y}, xp.{fn}({x}, {y})))"
    return emit


fmax, fmin = _fminmax("maximum"), _fminmax("minimum")


def logaddexp_weight(e, *, base2):
    x, y, lae = e.atoms
    dt = xp_dtype(e.aval.dtype)
    w = f"xp.pow(2.0, {y} - {lae})" if base2 else f"xp.exp({y} - {lae})"
    # an input and logaddexp the same infinity: weight 1 (or 1/2 when both are)
    return (f"xp.where(({y} == {lae}) & xp.isinf({y}), xp.where({x} == {y}, "
            f"xp.asarray(0.5, dtype={dt}), 1.0), {w})")


def argsort(e, *, axis, kind):
    return f"xp.argsort({e.args[0]}, axis={axis}, stable=True)"


def partition_perm(e, *, kth, axis):
    """The permutation that sorts, which is NumPy's partition order at the kth places:
    emitted only where the graph reads those places alone (graphc/xp_partition.py)."""
    return f"xp.argsort({e.args[0]}, axis={axis}, stable=True)"


def slogdet(e):
    return f"xp.stack(tuple(xp.linalg.slogdet({e.args[0]})))"


def cholesky(e, *, upper):
    if upper:
        return f"xp.linalg.cholesky({e.args[0]}, upper=True)"
    return f"xp.linalg.cholesky({e.args[0]})"


def tril_scaled(e, *, diag):
    if diag == 1.0:
        return f"xp.tril({e.args[0]})"
    m, n = e.aval.shape[-2:]
    eye = f"xp.eye({m}, {n}, dtype={xp_dtype(e.aval.dtype)}, device=_device)"
    return f"xp.tril({e.atoms[0]} * (1 - {1.0 - diag!r} * {eye}))"


# --- convolution and pooling ------------------------------------------------------------
def _pad_lines(out, src, shape, ph, pw, value, dt):
    """``out`` = ``src`` (N, C, H, W, ...) padded by concatenation (no slice writes)."""
    n, c, h, w = shape[:4]
    rest = tuple(shape[4:])

    def block(dims):
        fill = f"xp.zeros({dims!r}, dtype={dt}, device=_device)" if value == 0 else \
            f"xp.full({dims!r}, {value}, dtype={dt}, device=_device)"
        return fill
    lines = []
    if ph:
        rows = block((n, c, ph, w) + rest)
        lines.append(f"{out} = xp.concat([{rows}, {src}, {rows}], axis=2)")
        src = out
    if pw:
        cols = block((n, c, h + 2 * ph, pw) + rest)
        lines.append(f"{out} = xp.concat([{cols}, {src}, {cols}], axis=3)")
    return lines


def _value_text(v):
    v = float(v)
    return repr(v) if np.isfinite(v) else ('-float("inf")' if v < 0 else 'float("inf")')


def _padded(shape, padding):
    return (shape[2] + 2 * padding[0], shape[3] + 2 * padding[1]) + tuple(shape[4:])


def im2col(e, *, kernel, stride, padding, dilation, pad_value):
    src, out = e.args[0], e.out
    dt = xp_dtype(e.aval.dtype)
    lines = []
    if any(padding):
        lines = _pad_lines(out, src, e.avals[0].shape, padding[0], padding[1],
                           _value_text(pad_value) if pad_value != 0 else 0, dt)
        src = out
    oh, ow = e.aval.shape[2:4]
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation

    def span(v, d, s, o):
        start = f"{v} * {d}" if d != 1 else v
        stop = f"{v} * {d} + {(o - 1) * s + 1}" if d != 1 else f"{v} + {(o - 1) * s + 1}"
        return f"{start}:{stop}" + (f":{s}" if s != 1 else "")
    window = f"{src}[:, :, {span('_i', dh, sh, oh)}, {span('_j', dw, sw, ow)}, ...]"
    # the windows stacked at axis 2, (N, C, KH*KW, OH, OW, ...), and moved last by a
    # permutation: a view on NumPy, which the usual transpose back to (N, C, KH, KW, OH,
    # OW, ...) before the GEMM turns into a free reshape (one copy in all, as NumPy's)
    nd = e.aval.ndim
    perm = (0, 1) + tuple(range(4, nd)) + (2, 3)
    pre = tuple(e.aval.shape[:2]) + (kh, kw) + tuple(e.aval.shape[2:-2])
    # in C order first (a batch-last view would give the stack its layout and cost a
    # second copy at the reshape after it; a no-op for a C-ordered array)
    lines.append(f"{out} = xp.reshape(xp.reshape({src}, (-1,)), "
                 f"{tuple(e.avals[0].shape[:2]) + _padded(e.avals[0].shape, padding)!r})")
    window = window.replace(f"{src}[", f"{out}[", 1)
    lines.append(f"{out} = xp.stack([{window} for _i in range({kh}) for _j in range({kw})], "
                 "axis=2)")
    lines.append(f"{out} = xp.permute_dims(xp.reshape({out}, {pre!r}), {perm!r})")
    return lines


def col2im(e, *, image, stride, padding, dilation):
    (n, c, h, w), rest = image[:4], tuple(image[4:])
    kh, kw = e.avals[0].shape[-2:]
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    dt = xp_dtype(e.aval.dtype)
    full = (n, c, h + 2 * ph, w + 2 * pw) + rest
    cols = e.atoms[0]
    lead = "..., _i, _j" if rest else ":, :, :, :, _i, _j"
    # the windows added one by one, in NumPy's order, from zeros (_add_window: a slice
    # `+=` into the fresh array where arrays are mutable, .at[].add on JAX, a sum of
    # padded windows elsewhere)
    return [f"{e.out} = xp.zeros({full!r}, dtype={dt}, device=_device)",
            f"for _i in range({kh}):",
            f"    for _j in range({kw}):",
            f"        {e.out} = _add_window(xp, {e.out}, {cols}[{lead}], _i * {dh}, _j * {dw}, "
            f"{sh}, {sw})",
            *([f"{e.out} = {e.out}[:, :, {ph}:{ph + h}, {pw}:{pw + w}, ...]"] if ph or pw else [])]


def _pool_span(i, k, o):
    return f"{i}:{i} + {k * (o - 1) + 1}:{k}" if isinstance(i, str) else \
        f"{i}:{i + k * (o - 1) + 1}:{k}"


def _pool_slice(x, i, j, kernel, ohw):
    return f"{x}[:, :, {_pool_span(i, kernel[0], ohw[0])}, {_pool_span(j, kernel[1], ohw[1])}]"


def max_pool(e, *, kernel):
    (kh, kw), ohw = kernel, e.aval.shape[2:]
    x = e.atoms[0]
    slices = [_pool_slice(x, i, j, kernel, ohw) for i in range(kh) for j in range(kw)]
    if 2 <= len(slices) <= 4:
        while len(slices) > 1:
            pairs = [f"xp.maximum({a}, {b})" for a, b in zip(slices[::2], slices[1::2])]
            slices = pairs + slices[len(pairs) * 2:]
        return [f"{e.out} = {slices[0]}"]
    return [f"{e.out} = {slices[0]}",
            f"for _i in range({kh}):",
            f"    for _j in range({kw}):",
            f"        {e.out} = xp.maximum({e.out}, {_pool_slice(x, '_i', '_j', kernel, ohw)})"]


def max_pool_mask(e, *, kernel):
    # window element (i, j) is where the maximum was (a tie goes to the first): a
    # per-namespace helper, comparisons written into one bool array on NumPy, a stack of
    # the comparisons elsewhere
    x, m = e.atoms
    return [f"{e.out} = _pool_mask(xp, {x}, {m}, {tuple(kernel)!r})"]


def unpool(e, *, image):
    # element (i, j) of each window: where its mask is set, the window's value, else 0
    # (exactly 0 also beside an infinite value): a per-namespace helper, strided writes
    # into one array on NumPy, the mask in the image's layout and a select elsewhere
    values, mask = e.atoms
    return [f"{e.out} = _unpool(xp, {values}, {mask}, {tuple(image)!r})"]


def pool_select(e):
    kh, kw = e.avals[1].shape[:2]
    y, mask = e.atoms
    ohw = e.aval.shape[2:]
    dt = xp_dtype(e.aval.dtype)
    return [f"{e.out} = xp.zeros({e.aval.shape!r}, dtype={dt}, device=_device)",
            f"for _i in range({kh}):",
            f"    for _j in range({kw}):",
            f"        {e.out} = {e.out} + xp.where({mask}[_i, _j, ...], "
            f"{_pool_slice(y, '_i', '_j', (kh, kw), ohw)}, xp.zeros((), dtype={dt}))"]
