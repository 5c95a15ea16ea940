'''Helper functions written after an array-API module's function.

What the array API standard lacks is done here, per namespace, in plain text
that :mod:`graphc.codegen_xp` appends to the module when its body uses it:
scatter-add with repeated indices (each engine's own: ``numpy.add.at``, torch
``index_add``, JAX ``.at[].add``; a portable one-hot sum elsewhere), and the
counter-based hash dropout's keep-mask comes from (the same bits on every
engine).  The function itself stays functional; these helpers may write into an
array they have just made (NumPy's ``add.at``), never into an argument.
'''
from __future__ import annotations

import re

from .codegen_guards import GUARD_HELPERS
from .xp_workspace import WORKSPACE_HELPERS, WORKSPACE_NEEDS

__all__ = ["HELPERS", "helpers_for", "wanted"]

_NAMESPACE = '''
def _namespace(*arrays):
    """The array-API namespace of the array arguments.  NumPy arrays get NumPy itself
    when it implements the standard (2024.12, NumPy >= 2.3), without array_api_compat's
    wrappers (several microseconds a call), with its reductions as array methods
    (_numpy_methods); no arrays: NumPy's too."""
    import numpy
    if all(type(a) is numpy.ndarray or isinstance(a, numpy.generic) for a in arrays):
        if getattr(numpy, "__array_api_version__", "") >= "2024.12":
            return _NUMPY.get("numpy") or _numpy_methods(numpy)
        import array_api_compat.numpy as numpy_namespace
        return numpy_namespace
    return array_api_compat.array_namespace(*arrays)


def _numpy_methods(numpy):
    """NumPy's namespace (a module named numpy holding NumPy's names) with its
    reductions, astype and matrix_transpose as the array methods that numpy.sum(x) and
    the others wrap in Python: the same results, microseconds sooner a call."""
    import types
    ns = types.ModuleType("numpy", numpy.__doc__)
    ns.__dict__.update(numpy.__dict__)

    def sum(x, /, *, axis=None, dtype=None, keepdims=False):
        return x.sum(axis=axis, dtype=dtype, keepdims=keepdims)

    def prod(x, /, *, axis=None, dtype=None, keepdims=False):
        return x.prod(axis=axis, dtype=dtype, keepdims=keepdims)

    def max(x, /, *, axis=None, keepdims=False):
        return x.max(axis=axis, keepdims=keepdims)

    def min(x, /, *, axis=None, keepdims=False):
        return x.min(axis=axis, keepdims=keepdims)

    def astype(x, dtype, /, *, copy=True, device=None):
        return x.astype(dtype, copy=copy)

    def matrix_transpose(x, /):
        return x.mT
    for f in (sum, prod, max, min, astype, matrix_transpose):
        setattr(ns, f.__name__, f)
    _NUMPY["numpy"] = ns
    return ns


_NUMPY = {}
'''

_DEVICE = '''
def _device_of(x):
    """The device constants are made on: the first array argument's."""
    try:
        return array_api_compat.device(x)
    except Exception:   # a traced value (jax.jit) has none: the default device
        return None
'''

_CHECK = '''
def _check(name, x, shape, dtype, xp):
    """The entry check: this code was generated for arrays of one shape and dtype."""
    if tuple(x.shape) != shape or x.dtype != getattr(xp, dtype):
        raise ValueError(f"this code was generated for {name}: {dtype}{list(shape)} but was "
                         f"called with {x.dtype}{list(x.shape)}; generate the code again "
                         "for these arguments (graphc re-traces per signature)")
'''

_SCATTER = '''
def _scatter_add(xp, n, pos, values, unique=False):
    """zeros(n) with values[k] added at pos[k] (1-D; repeated positions add up, in order).

    The standard has no scatter-add, so each engine's own is used: numpy.add.at
    (NumPy, CuPy), index_add (PyTorch), .at[].add (JAX).  Any other namespace
    (array_api_strict) gets a portable one-hot form: exact (the same additions in
    the same order) but O(len(pos) * n) in time and memory, 174x slower than
    numpy.add.at at 50,000 classes, so it is only the fallback.  unique: no
    position repeats (a plain write; keeps a -0.0).
    """
    if array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_cupy_namespace(xp):
        import numpy
        lib = numpy if array_api_compat.is_numpy_namespace(xp) else __import__("cupy")
        out = lib.zeros(n, dtype=values.dtype)
        if unique:
            out[pos] = values
        else:
            lib.add.at(out, pos, values)
        return out
    if array_api_compat.is_torch_namespace(xp):
        out = xp.zeros(n, dtype=values.dtype, device=values.device)
        return out.index_copy(0, pos, values) if unique else out.index_add(0, pos, values)
    if array_api_compat.is_jax_namespace(xp):
        out = xp.zeros(n, dtype=values.dtype)
        return out.at[pos].set(values) if unique else out.at[pos].add(values)
    hit = xp.reshape(pos, (-1, 1)) == xp.arange(n, dtype=pos.dtype, device=_device_of(pos))
    if unique:
        picked = xp.take(values, xp.argmax(xp.astype(hit, xp.int8), axis=0), axis=0)
        return xp.where(xp.any(hit, axis=0), picked, xp.zeros_like(picked))
    return xp.sum(xp.where(hit, xp.reshape(values, (-1, 1)), xp.zeros_like(values[:1])), axis=0)
'''

_LAST = '''
def _last_writes(xp, pos, spare):
    """pos with every entry a later one repeats sent to the spare slot: only the last
    write to a position is kept (NumPy's order).  O(len(pos)**2): index writes are small."""
    k = xp.arange(pos.shape[0], device=_device_of(pos))
    later = (xp.reshape(pos, (-1, 1)) == xp.reshape(pos, (1, -1))) & \
        (xp.reshape(k, (-1, 1)) < xp.reshape(k, (1, -1)))
    return xp.where(xp.any(later, axis=1), xp.asarray(spare, dtype=pos.dtype), pos)
'''

_KEEP = '''
def _keep_mask(xp, key, shape, rate, device):
    """Dropout's keep-mask: True with probability 1 - rate, from a counter-based hash
    of (key, element index) in int64 arithmetic below 2**62, so every engine gives
    the same bits (JAX needs jax_enable_x64).  Not NumPy's RNG: the NumPy target's
    masks differ."""
    n = 1
    for d in shape:
        n *= d
    h = xp.asarray(key, dtype=xp.int64, device=device) % 2147483648
    h = (xp.arange(n, dtype=xp.int64, device=device) + h * 1640531527) % 2147483648
    for c in (73244475, 739298093, 695872825):
        h = ((h ^ (h >> 16)) * c) % 2147483648
    h = h ^ (h >> 16)
    return xp.reshape(xp.astype(h, xp.float64) / 2147483648.0, shape) >= rate
'''

_PLACE = '''
def _place(xp, block, full, r0, c0, sh, sw):
    """zeros(full) with block (N, C, OH, OW, ...) at rows r0::sh, columns c0::sw: zeros
    stacked between rows (a stride) and concatenated around (no slice writes)."""
    dev = _device_of(block)
    for axis, step in ((2, sh), (3, sw)):
        if step > 1:
            z = xp.zeros(block.shape, dtype=block.dtype, device=dev)
            block = xp.stack([block] + [z] * (step - 1), axis=axis + 1)
            shape = list(block.shape)
            shape[axis:axis + 2] = [shape[axis] * step]
            block = xp.reshape(block, tuple(shape))
            block = xp.take(block, xp.arange(shape[axis] - step + 1, device=dev), axis=axis)
    for axis, start in ((2, r0), (3, c0)):
        before = list(block.shape)
        after = list(block.shape)
        before[axis], after[axis] = start, full[axis] - start - block.shape[axis]
        block = xp.concat([xp.zeros(tuple(before), dtype=block.dtype, device=dev), block,
                           xp.zeros(tuple(after), dtype=block.dtype, device=dev)], axis=axis)
    return block
'''

_ADD_WINDOW = '''
def _add_window(xp, out, block, r0, c0, sh, sw):
    """out (an array this function made) plus block (N, C, OH, OW, ...) at rows r0::sh and
    columns c0::sw.  Mutable arrays (NumPy, CuPy, PyTorch) take a slice +=, JAX arrays
    .at[].add; others a sum with the block padded to out's shape."""
    rows = slice(r0, r0 + (block.shape[2] - 1) * sh + 1, sh)
    cols = slice(c0, c0 + (block.shape[3] - 1) * sw + 1, sw)
    if (array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_cupy_namespace(xp)
            or array_api_compat.is_torch_namespace(xp)):
        out[:, :, rows, cols, ...] += block
        return out
    if array_api_compat.is_jax_namespace(xp):
        return out.at[:, :, rows, cols].add(block)
    return out + _place(xp, block, out.shape, r0, c0, sh, sw)
'''

_MASKED_MUL = '''
def _masked_mul(xp, x, w):
    """x * w, exactly 0 where w is 0 or False (also beside inf and nan, where the
    product would be nan).  NumPy's where is many times slower than a multiply, so
    engines with mutable arrays multiply and redo the select only when the product has
    a nan (as the NumPy target does; they multiply by a bool as by 0 and 1); others
    select."""
    mask = w.dtype == xp.bool
    if type(x) is type(w) and type(x).__module__ == "numpy":   # NumPy: methods, faster
        out = x * w
        top = out.max() if out.size else 0
        if top == top:                          # no nan (nan != nan)
            return out
    elif (array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_cupy_namespace(xp)
            or array_api_compat.is_torch_namespace(xp)):
        out = x * w
        if 0 in out.shape or not bool(xp.isnan(xp.max(out))):
            return out
    if mask:
        return xp.where(w, x, xp.zeros((), dtype=x.dtype))
    return xp.where(w == 0, xp.zeros((), dtype=x.dtype), x * w)
'''

_DECIDE = '''
def _decide(x, kind, where):
    """The Python value (bool, int, float) of a 0-d array a branch, loop or guard tests.
    An array without a value yet (a tracer under jax.jit) cannot decide: say so."""
    try:
        return kind(x)
    except Exception as e:
        if type(e).__module__.split(".")[0] != "jax":
            raise
        raise TypeError(
            f"{where}: this graphc module decides on a value here (a while_loop, cond, switch "
            "or an `if` on a traced value), which has no value under jax.jit; call the module "
            "without jax.jit, or keep the decision out of the traced function") from e
'''

_CBRT = '''
def _cbrt(xp, x):
    """The real cube root (negative for x < 0; 0, inf and nan as they are).  The standard
    has none: NumPy, CuPy and JAX use their own (NumPy's bits); other namespaces
    sign(x) * |x| ** (1/3) with one Newton step (within a few ulps)."""
    if array_api_compat.is_numpy_namespace(xp):
        import numpy
        return numpy.cbrt(x)
    if array_api_compat.is_cupy_namespace(xp) or array_api_compat.is_jax_namespace(xp):
        return xp.cbrt(x) if hasattr(xp, "cbrt") else __import__("jax").numpy.cbrt(x)
    big = xp.astype(x, xp.float64) if x.dtype == xp.float32 else x
    y = xp.pow(xp.abs(big), 1.0 / 3.0)
    y = xp.where(xp.signbit(big), -y, y)             # (-0.0 stays -0.0)
    better = y + (big / (y * y) - y) / 3.0       # Newton: y**3 = x
    y = xp.where(xp.isfinite(y) & (y != 0), better, y)
    return xp.astype(y, x.dtype) if x.dtype == xp.float32 else y
'''

_LOGADDEXP2 = '''
def _logaddexp2(xp, x, y):
    """log2(2**x + 2**y) without overflow, as NumPy's ufunc: x + 1 where x == y, else
    the larger plus log2(1 + 2**-|x - y|); nan propagates.  NumPy, CuPy, JAX and
    PyTorch use their own; other namespaces the same steps (xp.pow(2.0, -d) for exp2:
    within a few ulps)."""
    if array_api_compat.is_numpy_namespace(xp):
        import numpy
        return numpy.logaddexp2(x, y)
    if array_api_compat.is_torch_namespace(xp):      # (a Python number: a tensor like the other)
        t = y if isinstance(x, (int, float)) else x
        x, y = (v if not isinstance(v, (int, float)) else
                xp.asarray(v, dtype=t.dtype, device=t.device) for v in (x, y))
        return __import__("torch").logaddexp2(x, y)
    if array_api_compat.is_cupy_namespace(xp) or array_api_compat.is_jax_namespace(xp):
        return xp.logaddexp2(x, y) if hasattr(xp, "logaddexp2") else \\
            __import__("jax").numpy.logaddexp2(x, y)
    d = x - y
    step = xp.log1p(xp.pow(2.0, -xp.abs(d))) * 1.4426950408889634     # log2(e)
    return xp.where(x == y, x + 1, xp.where(d == d, xp.where(d > 0, x, y) + step, d))
'''


#: {helper name: its source}, in the order they are written.
HELPERS = {"_namespace": _NAMESPACE, "_device_of": _DEVICE, "_check": _CHECK,
           "_scatter_add": _SCATTER, "_keep_mask": _KEEP, "_last_writes": _LAST,
           "_place": _PLACE, "_add_window": _ADD_WINDOW,
           "_masked_mul": _MASKED_MUL, "_decide": _DECIDE, "GuardFailed": GUARD_HELPERS,
           "_cbrt": _CBRT, "_logaddexp2": _LOGADDEXP2,
           **WORKSPACE_HELPERS}     # _kept, _matmul, _stack, _in_place: NumPy's memory reuse
_NEEDS = {"_scatter_add": ("_device_of",), "_last_writes": ("_device_of",), "_place": ("_device_of",),
          "_add_window": ("_place", "_device_of")}
_NEEDS.update(WORKSPACE_NEEDS)


def wanted(text: str) -> set[str]:
    """The names of the helpers ``text`` calls (and those they call)."""
    want = {name for name in HELPERS if re.search(rf"(?<![\w.]){name}\(", text)}
    for name in list(want):
        want.update(_NEEDS.get(name, ()))
    return want


def helpers_for(text: str) -> list[str]:
    """The lines of the helpers ``text`` calls (and those they call)."""
    want = wanted(text)
    out: list[str] = []
    for name, src in HELPERS.items():
        if name in want:
            out += src.strip().splitlines() + ["", ""]
    return out[:-2]
