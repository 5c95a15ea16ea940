"""Trust fuzzing (issue 12): random programs over the whole primitive set.

tests/test_fuzz.py draws programs that keep away from kinks, ties and domain
edges.  This file draws programs that go *to* them, over every registered
primitive (graphc.primitive.REGISTRY), each reached through its user-facing
NumPy or graphc.nn call:

* inputs hold exact special values (0.0, -0.0, ties such as 1.0 / -1.0);
* kinked ops (relu, abs, maximum, clip, max, maxout, max pooling, ...) are
  allowed at their kinks; comparisons and logic build masks;
* non-boolean masks: ``np.where`` with float / int conditions (constant and
  traced, NaN included: NumPy takes NaN as true);
* signed zeros: ``x + 0.0``, ``0.0 - x``, constants such as ``[0., -0., 0.]``;
  values are compared with NumPy bit for bit in the sign of zeros;
* infinite branches: ``sqrt`` of a where / maximum / minimum / clip / relu /
  dropout / max / maxout / max pooling whose selected value is exactly a
  constant 0 (an infinite cotangent meets the mask: the unselected side must
  get exactly 0, not ``inf * 0 = nan``); ``where`` whose unselected branch is
  ``log`` of a negative number.  Not generated, because JAX and PyTorch give
  NaN there too: an infinite local derivative *inside* an unselected branch
  (``np.where(x > 0, np.sqrt(x), 0)`` at ``x <= 0``) or upstream of a value that
  receives an infinite cotangent (``sqrt(x * x)`` at 0);
* ``x ** 0`` at 0; the float16 mean of many values; float16 programs.

The oracles:

* values: NumPy (eager, the same program on ndarrays) in float64, with the
  sign of zeros and the position of NaNs and infinities;
* gradients: float64 central differences of the NumPy program.  Every kinked
  or discontinuous op reports its *decisions* (which side of each kink each
  element is on).  A coordinate whose FD step changes one continuous decision
  is checked against the hull of the two one-sided differences (AD's
  conventions at a kink - relu'(0) = 0, a tie split half/half, the first
  maximum - all lie in it); one whose step changes a discontinuous decision
  or several decisions is skipped, and so is one where the function is not
  finite within the step (sqrt at 0).  Skips are counted, and each property
  asserts they stay below a few percent of the checked coordinates;
* float16: graphc's float16 result may be no further from the float64 value
  (at the float16-rounded inputs) than NumPy's own float16 evaluation, up to a
  few float16 ulps; float16 gradients agree with float64 gradients to a
  tolerance scaled by float16's epsilon and the program's length;
* invalid axes: where NumPy raises, graphc raises too (never a result).

``PENDING`` lists features whose bugs are known and not yet fixed: the main
properties leave them out (and compare the sign of zeros only under
``signed_zero``), and each has its own property marked ``xfail`` while it is
pending.  It is empty: every feature runs in every property.

Profiles: the quick one (derandomized, a few seconds) runs in ``make test``;
``make fuzz`` runs ``5 * GRAPHC_FUZZ_EXAMPLES`` programs in each of the two
main properties (20,000 in all at the default of 2000) plus the others.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings

import graphc
from graphc.primitive import REGISTRY

import test_fuzz as TF
from test_fuzz import BOUND, LONG, SEEDS, Draw, long, quick

nn = graphc.nn

# Features with known, unfixed bugs (none now): left out of the main properties.
PENDING: set = set()
ALL_FEATURES = {"base", "kink", "mask", "nn", "nonbool", "inf_branch", "pow0", "f16_mean",
                "signed_zero", "reductions"}
# The reductions (issue 14) are checked by their own feature test (test_trust_fuzz_feature),
# and kept out of the other features' programs, whose skip statistics they would change.
READY = ALL_FEATURES - PENDING - {"reductions"}
pending = pytest.mark.xfail(strict=False, reason="a known bug listed in PENDING")


def _pending(feature):
    return [pending] if feature in PENDING else []


# --- the op table ------------------------------------------------------------------------
@dataclass
class Op:
    arity: int
    fn: object                 # (*operands, **params): the user's call (ndarrays or tracers)
    draw: object               # (Draw, *float64 operands) -> params, or None
    kinks: object = None       # (*operands, **params) -> [(decision array, continuous)]
    feature: str = "base"
    terminal: bool = False     # a sink only (its gradient may be infinite)
    # NumPy's value of what graphc promises where it deliberately differs from the
    # user's naive formula (a documented stable rewrite); None: ``fn`` itself.
    reference: object = None


def _bshape(*xs):
    try:
        return np.broadcast_shapes(*[np.shape(x) for x in xs])
    except ValueError:
        return None


def _any(d, *xs):
    return {} if _bshape(*xs) is not None else None


def _sgn(a):
    return np.sign(np.asarray(a, np.float64))


# kink ops: allowed at their kinks (continuous: the hull check applies)
def _k1(f):
    return lambda x, **p: [(f(np.asarray(x), **p), True)]


def _draw_clip(d, x):
    lo = d.choice([-1.0, -0.5, 0.0, -0.0])
    hi = d.choice([0.0, 0.5, 1.0, 2.0])
    return {"lo": lo, "hi": hi, "method": d.bool()} if lo <= hi else None


def _clip(x, lo, hi, method):
    return x.clip(lo, hi) if method else np.clip(x, lo, hi)


def _draw_extreme(d, x):
    axis = TF._axes(d, np.ndim(x))
    return {"axis": axis, "keepdims": d.bool(), "which": d.choice(["max", "min", "method"])}


def _extreme(x, axis, keepdims, which):
    if which == "method":
        return x.max(axis=axis, keepdims=keepdims)
    return (np.max if which == "max" else np.min)(x, axis=axis, keepdims=keepdims)


def _extreme_kinks(x, axis, keepdims, which):
    f = np.min if which == "min" else np.max
    return [(x == f(x, axis=axis, keepdims=True), True)]


def _draw_maxout(d, x):
    if np.ndim(x) == 0:
        return None
    axis = d.int(-np.ndim(x), np.ndim(x) - 1)
    pieces = [p for p in (2, 3) if np.shape(x)[axis] % p == 0]
    return {"pieces": d.choice(pieces), "axis": axis} if pieces else None


def _maxout_kinks(x, pieces, axis):
    a = axis % x.ndim
    g = x.reshape(x.shape[:a] + (x.shape[a] // pieces, pieces) + x.shape[a + 1:])
    return [(g == g.max(axis=a + 1, keepdims=True), True)]


# masks from comparisons and logic
_CMP = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
        "==": operator.eq, "!=": operator.ne}


def _draw_cond(d, depth=0):
    kind = d.choice(["cmp", "cmp", "and", "or", "not"] if depth < 2 else ["cmp"])
    if kind == "cmp":
        a = d.choice(["x", "y"])
        b = d.choice(["x", "y", 0.0, -0.0, 1.0, 0.5])
        return ("cmp", d.choice(sorted(_CMP)), a, b)
    if kind == "not":
        return ("not", d.bool(), _draw_cond(d, depth + 1))
    return (kind, d.bool(), _draw_cond(d, depth + 1), _draw_cond(d, depth + 1))


def _cond(spec, x, y):
    kind = spec[0]
    if kind == "cmp":
        _, op, a, b = spec
        pick = lambda v: x if v == "x" else (y if v == "y" else v)   # noqa: E731
        return _CMP[op](pick(a), pick(b))
    if kind == "not":
        c = _cond(spec[2], x, y)
        return np.logical_not(c) if spec[1] else ~c
    c1, c2 = _cond(spec[2], x, y), _cond(spec[3], x, y)
    if kind == "and":
        return np.logical_and(c1, c2) if spec[1] else c1 & c2
    return np.logical_or(c1, c2) if spec[1] else c1 | c2


def _draw_masked(d, x, y):
    if _bshape(x, y) is None:
        return None
    return {"spec": _draw_cond(d), "form": d.choice(["where", "astype"])}


def _masked(x, y, spec, form):
    c = _cond(spec, x, y)
    if form == "where":
        return np.where(c, x * 2.0, y - 1.0)
    if form == "astype":      # a 0/1 float mask times a value
        return c.astype(np.result_type(x, y)) * x + y
    # an int mask used as a (non-boolean) where condition: 3 or 0
    return np.where(c.astype(np.int64) * 3, x, y)


def _draw_where_int(d, x, y):
    return {"spec": _draw_cond(d), "form": "astype_int"} if _bshape(x, y) is not None else None


def _masked_kinks(x, y, spec, form):
    return [(np.asarray(_cond(spec, x, y)), False)]


def _sign_mul(x, y):
    return np.sign(x) * y


# non-boolean where conditions
_COND_VALUES = [0.0, 1.0, 3.0, -1.0, 0.5, -0.0, np.nan, 0.0, 2.0]


def _draw_where_const(d, x, y):
    shape = _bshape(x, y)
    if shape is None:
        return None
    cshape = shape[len(shape) - d.int(0, len(shape)):] if shape else ()
    as_int = d.bool()
    vals = [v for v in _COND_VALUES if not (as_int and np.isnan(v))]
    c = np.array([d.choice(vals) for _ in range(int(np.prod(cshape)))]).reshape(cshape)
    return {"c": c.astype(np.int64) if as_int else c}


def _where_const(x, y, c):
    return np.where(c, x, y)


def _draw_where_traced(d, z, x, y):
    return {} if _bshape(z, x, y) is not None else None


def _where_traced(z, x, y):
    return np.where(z, x, y)          # a float condition: true where z != 0 (or NaN)


# infinite branches: sqrt of a masked value that is exactly 0 somewhere (sinks only)
_INF_FORMS = ["relu", "maximum", "clip", "where", "where_nb", "dropout", "minimum",
              "max_reduce", "maxout", "max_pool"]


def _draw_inf(d, x):
    form = d.choice(_INF_FORMS)
    if form in ("maximum", "minimum", "clip", "max_reduce", "maxout", "max_pool") \
            and np.any(np.asarray(x) == 0):
        # x tied with the constant 0: x then shares sqrt's infinite cotangent, and any
        # upstream derivative of 0 gives inf * 0 = nan in graphc as in JAX and PyTorch
        return None
    p = {"form": form}
    if form == "where_nb":
        p["c"] = np.array([d.choice([0.0, 2.0, -0.0, 1.0]) for _ in range(np.size(x))]
                          ).reshape(np.shape(x))
    if form == "dropout":
        p["dkey"] = d.int(0, 99)
    return p


def _inf_inner(x, form, c=None, dkey=None):
    if form == "relu":
        return nn.relu(x)
    if form == "maximum":
        return np.maximum(x, 0.0)
    if form == "minimum":
        return -np.minimum(x, 0.0)
    if form == "clip":
        return np.clip(x, 0.0, 1.5)
    if form == "where":
        return np.where(x > 0, x, 0.0)
    if form == "where_nb":
        return np.where(c, x * x + 0.25, 0.0)
    if form in ("max_reduce", "maxout", "max_pool"):
        # the max of each element and a constant 0: the max reductions' masks
        pair = np.stack([np.reshape(x, (-1,)), np.zeros(np.size(x))], axis=-1)   # (n, 2)
        if form == "max_reduce":
            out = np.max(pair, axis=-1)
        elif form == "maxout":
            out = nn.maxout(pair, 2, axis=-1)
        else:
            out = nn.max_pool2d(np.reshape(pair, (1, 1) + np.shape(pair)), (1, 2))
        return np.reshape(out, np.shape(x))
    return nn.dropout(x * x + 0.25, 0.5, key=dkey)


def _inf_branch(x, form, c=None, dkey=None):
    return np.sqrt(_inf_inner(x, form, c, dkey))


def _inf_kinks(x, form, c=None, dkey=None):
    if form in ("where_nb", "dropout"):
        return []
    return [(_sgn(x), True), (_sgn(x - 1.5), True)]


def _log_where(x):
    # the unselected branch log(x <= 0) is -inf or NaN; its gradient must not leak
    return np.where(x > 0.0, np.log(x), 0.0)


def _draw_log_where(d, x):
    return None if np.any(np.asarray(x) == 0) else {}


# signed zeros
def _draw_zconst(d, x):
    shape = np.shape(x)
    cshape = shape[len(shape) - d.int(0, len(shape)):] if shape else ()
    n = int(np.prod(cshape))
    pool = [0.0, -0.0] if d.bool() else [0.0, -0.0, 1.0, -1.0]
    return {"c": np.array([pool[i % len(pool)] if d.bool() else d.choice(pool)
                           for i in range(n)]).reshape(cshape), "op": d.choice(["+", "*", "-"])}


def _zconst(x, c, op):
    return x + c if op == "+" else (x * c if op == "*" else x - c)


_ZERO_FORMS = {
    "x+0.0": lambda x: x + 0.0, "0.0+x": lambda x: 0.0 + x, "x-0.0": lambda x: x - 0.0,
    "0.0-x": lambda x: 0.0 - x, "x+(-0.0)": lambda x: x + (-0.0), "x-(-0.0)": lambda x: x - (-0.0),
    "x*1.0": lambda x: x * 1.0, "x/1.0": lambda x: x / 1.0, "x*-1.0": lambda x: x * -1.0,
    "-(-x)": lambda x: -(-x), "x*0.0": lambda x: x * 0.0, "np.add(x,0)": lambda x: np.add(x, 0.0),
    "x+zeros": lambda x: x + np.zeros(np.shape(x)),
}


def _draw_zero_form(d, x):
    return {"form": d.choice(sorted(_ZERO_FORMS))}


def _zero_form(x, form):
    return _ZERO_FORMS[form](x)


# x ** 0
_POW0 = {"x**0": lambda x: x ** 0, "x**0.0": lambda x: x ** 0.0,
         "np.power(x,0)": lambda x: np.power(x, 0)}


def _pow0(x, form):
    return _POW0[form](x) * 1.5 + x


def _draw_pow0(d, x):
    return {"form": d.choice(sorted(_POW0))}


# float16 mean of many values (accumulates in float32 in NumPy)
def _mean_big(x, k):
    return np.mean(np.broadcast_to(x * 16.0, (k,) + np.shape(x)), axis=0)


# graphc.nn: convolution, pooling, dropout, flatten
def _divisors(n):
    return [k for k in range(1, n + 1) if n % k == 0]


def _draw_image(d, x, nd=2):
    """A layout (N, C, H[, W]) of an image made from x's elements: x repeated m times,
    each copy scaled by its own random constant (no ties), so small x give real images."""
    size = int(np.size(x))
    m = d.int(max(1, 8 // size), max(1, 40 // size))
    total = m * size
    n = d.choice([k for k in (1, 1, 2) if total % k == 0])
    c = d.choice([k for k in (1, 1, 2, 3) if (total // n) % k == 0])
    rest = total // (n * c)
    scale = d.rng.uniform(0.5, 1.5, size=(m, size)) * d.rng.choice([-1.0, 1.0], size=(m, size))
    if nd == 1:
        return {"img": (n, c, rest), "scale": scale}
    # the most square image most of the time: windows then fit both ways
    divs = [k for k in _divisors(rest) if k * k <= rest]
    h = divs[-1] if d.bool() else d.choice(_divisors(rest))
    return {"img": (n, c, h, rest // h), "scale": scale}


def _image(x, img):
    return np.reshape(np.reshape(x, (1, -1)) * img["scale"], img["img"])


def _draw_conv(d, x, y):
    img = _draw_image(d, x)
    n, c, h, w = img["img"]
    k = (d.int(1, 3), d.int(1, 3))
    s = (d.int(1, 2), d.int(1, 2))
    dil = (d.int(1, 2), d.int(1, 2))
    pad = (d.int(0, 2), d.int(0, 2))
    span = [dd * (kk - 1) + 1 for dd, kk in zip(dil, k)]
    if span[0] > h + 2 * pad[0] or span[1] > w + 2 * pad[1]:
        return None
    f = d.int(1, 3)
    use_y = np.size(y) == f * c * k[0] * k[1]
    wconst = d.rng.uniform(-1, 1, size=(f, c) + k)
    b = d.rng.uniform(-1, 1, size=(f,)) if d.bool() else None
    return {"img": img, "wc": None if use_y else wconst, "b": b, "s": s, "pad": pad, "dil": dil,
            "k": k, "f": f}


def _conv(x, y, img, wc, b, s, pad, dil, k, f):
    w = wc if wc is not None else np.reshape(y, (f, img["img"][1]) + k)
    return nn.conv2d(_image(x, img), w, b, stride=s, padding=pad, dilation=dil)


def _draw_conv1d(d, x):
    img = _draw_image(d, x, 1)
    k, s, dil, pad = d.int(1, 3), d.int(1, 2), d.int(1, 2), d.int(0, 2)
    if dil * (k - 1) + 1 > img["img"][2] + 2 * pad:
        return None
    return {"img": img, "w": d.rng.uniform(-1, 1, size=(d.int(1, 2), img["img"][1], k)), "s": s,
            "pad": pad, "dil": dil}


def _conv1d(x, img, w, s, pad, dil):
    return nn.conv1d(_image(x, img), w, None, stride=s, padding=pad, dilation=dil)


def _draw_pool(d, x):
    one_d = d.bool()
    img = _draw_image(d, x, 1 if one_d else 2)
    hw = img["img"][2:] if not one_d else (1, img["img"][2])
    kind = d.choice(["max", "max", "avg", "lp"] if not one_d else ["max", "avg"])
    k = (d.int(min(2, hw[0]), min(3, hw[0])), d.int(min(2, hw[1]), min(3, hw[1])))
    if one_d:
        k = (1, k[1])
    s = k if d.bool() else (d.int(1, 2), d.int(1, 2))
    if one_d:
        s = (1, s[1])
    pad = (0, 0) if kind == "lp" or d.bool() else (d.int(0, k[0] // 2), d.int(0, k[1] // 2))
    if one_d:
        pad = (0, pad[1])
    return {"img": img, "kind": kind, "k": k, "s": s, "pad": pad}


def _pool(x, img, kind, k, s, pad):
    xi = _image(x, img)
    if len(img["img"]) == 3:
        f = nn.max_pool1d if kind == "max" else nn.avg_pool1d
        return f(xi, k[1], s[1], pad[1])
    if kind == "lp":
        return nn.lp_pool2d(xi, 2, k, s)
    f = nn.max_pool2d if kind == "max" else nn.avg_pool2d
    return f(xi, k, s, pad)


def _pool_kinks(x, img, kind, k, s, pad):
    xi = _image(np.asarray(x, np.float64), img)
    if len(img["img"]) == 3:
        xi = xi[:, :, None, :]
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(xi, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(2, 3))[:, :, ::s[0], ::s[1]]
    if kind == "max":
        return [(win == win.max(axis=(-2, -1), keepdims=True), True)]
    if kind == "lp":
        return [((win * win).sum(axis=(-2, -1)) == 0, True)]
    return []


# reductions (graphc/ops/statistics.py, scans.py, norms.py), drawn away from their kinks:
# std and norm with a spread well above 0, argmin and any/all with a clear winner.
def _draw_scan(d, x):
    return {"axis": d.int(0, np.ndim(x) - 1) if np.ndim(x) and d.bool() else None}


def _draw_spread(d, x):
    axis = TF._axes(d, np.ndim(x))
    if np.ndim(x) == 0 or np.min(np.std(x, axis=axis)) < 0.05 or \
            np.min(np.linalg.norm(np.reshape(x, (-1,)))) < 0.05:
        return None
    return {"axis": axis, "which": d.choice(["std", "method", "norm"])}


def _spread(x, axis, which):
    if which == "norm":
        return np.linalg.norm(x)
    return np.std(x, axis=axis, ddof=0) if which == "std" else x.std(axis=axis)


def _draw_pick(which):
    def draw(d, x):
        if np.ndim(x) == 0 or not TF._top2_gap(x, (np.ndim(x) - 1,), False) \
                or np.min(np.abs(np.asarray(x) - 0.25)) < 0.05:
            return None
        return {"which": which}
    return draw


def _pick(x, which):
    if which == "argmin":       # the row minimum, found by index
        i = np.argmin(x, axis=-1)
        return np.where(np.arange(x.shape[-1]) == i[..., None], x, 0.5 * x)
    hit = np.any(x > 0.25, axis=-1, keepdims=True) if which == "any" else \
        (x > 0.25).all(axis=-1, keepdims=True)
    return np.where(hit, x, 2.0 * x)


def _draw_dropout(d, x):
    return {"rate": d.choice([0.0, 0.3, 0.5, 0.9]), "dkey": d.int(0, 99)}


def _dropout(x, rate, dkey):
    return nn.dropout(x, rate, key=dkey)


def _draw_bool_index(d, x):
    if np.ndim(x) == 0:
        return None
    m = d.rng.integers(0, 2, size=np.shape(x)).astype(bool)
    m.flat[d.int(0, m.size - 1)] = True
    return {"m": m}


def _draw_einsum(d, x, y):
    # a batched dot product over the last axis: "...i,...i->..." (np.einsum)
    if np.ndim(x) == 0 or np.ndim(y) == 0 or np.shape(x)[-1] != np.shape(y)[-1]:
        return None
    return {} if _bshape(np.asarray(x)[..., 0], np.asarray(y)[..., 0]) is not None else None


# rounding, division and predicates (issue 14).  Step functions get inputs shifted off the
# jumps the special values would sit on (0, 1, 0.5 ... are integers or halves).
def _off(x):
    return x * 1.37 + 0.0123


_STEPS = {"floor": np.floor, "ceil": np.ceil, "rint": np.rint, "trunc": np.trunc,
          "round1": lambda v: np.round(v, 1), "around": np.around, "method": lambda v: v.round()}
_DIVS = {"%": operator.mod, "//": operator.floordiv, "fmod": np.fmod, "mod": np.mod,
         "divmod": lambda a, b: divmod(a, b)[0] * 0.5 + divmod(a, b)[1]}


def _divisor(y, s):
    return (y * 0.8 + 2.3) * s        # in [0.7, 3.9] or its negative


def _div(x, y, which, s):
    return _DIVS[which](_off(x), _divisor(y, s))


def _div_kinks(x, y, which, s):
    a, b = _off(x), _divisor(y, s)
    return [(np.trunc(a / b) if which == "fmod" else np.floor_divide(a, b), False)]


_PREDS = {
    "xor": lambda x, y: np.logical_xor(x > 0.25, y < 0.75),
    "^": lambda x, y: (x > 0.25) ^ (y < 0.75),
    "isnan": lambda x, y: np.isnan(np.log(x)),
    "isinf": lambda x, y: np.isinf(1.0 / x),
    "isfinite": lambda x, y: np.isfinite(x / y),
}


def _pred(x, y, which):
    if which == "nan_to_num":
        return np.nan_to_num(np.where(x > 0.5, np.inf, x), posinf=3.0) * y
    return np.where(_PREDS[which](x, y), x * 2.0, y)


def _pred_kinks(x, y, which):
    if which == "nan_to_num":
        return [(x > 0.5, False)]
    return [(np.asarray(_PREDS[which](x, y)), False)]


def _draw_which(options, extra=None):
    def draw(d, *xs):
        if _bshape(*xs) is None:
            return None
        return {"which": d.choice(sorted(options)), **({k: d.choice(v) for k, v in extra.items()}
                                                      if extra else {})}
    return draw


def _issue14_ops():
    return {
        "step_m": Op(1, lambda x, which: _STEPS[which](_off(x)), _draw_which(_STEPS),
                     lambda x, which: [(_STEPS[which](_off(x)), False)], "mask"),
        "div_m": Op(2, _div, _draw_which(_DIVS, {"s": [1.0, -1.0]}), _div_kinks, "mask"),
        "fmaxmin_k": Op(2, lambda x, y, which: getattr(np, which)(x, y),
                        _draw_which(["fmax", "fmin"]),
                        lambda x, y, which: [(_sgn(x - y), True)], "kink"),
        "heaviside_m": Op(2, np.heaviside, _any, lambda x, y: [(_sgn(x), False)], "mask"),
        "pred_m": Op(2, _pred, _draw_which([*_PREDS, "nan_to_num"]), _pred_kinks, "mask"),
    }


def _draw_sort(d, x):
    if np.ndim(x) == 0:
        return None
    axis = d.int(-np.ndim(x), np.ndim(x) - 1)
    return {"axis": axis, "kth": d.int(0, np.shape(x)[axis] - 1), "which": d.choice(
        ["sort", "sort", "partition"])}


def _sort(x, axis, kth, which):
    return np.sort(x, axis=axis) if which == "sort" else np.partition(x, kth, axis=axis)


def _sort_kinks(x, axis, kth, which):
    # The order of the elements decides where each cotangent goes (ties are kinks).
    return [(np.argsort(np.asarray(x), axis=axis, kind="stable"), True)]


def _draw_write(d, x):
    if np.ndim(x) == 0:
        return None
    return {"i": d.int(0, np.shape(x)[0] - 1)}


def _write(x, i):
    """A write into an array (graphc.updates: a setitem node, the old slot's gradient 0)."""
    y = x * 1.0
    y[i] = x[i] * 2.0
    return y


def _ops():
    ops = {name: Op(rec[0], rec[1], rec[3]) for name, rec in TF.OPS.items()}
    # graphc records log(1 + exp(x)) as softplus (docs/stability.md): exact where the
    # naive formula loses all digits (x = -21.7: relative error 3e-7; x < -37: 0).
    ops["hand_softplus"].reference = lambda x: np.logaddexp(np.zeros((), x.dtype), x)
    k = "kink"
    ops.update({
        "relu_k": Op(1, lambda x: nn.relu(x), _any, _k1(lambda x: x > 0), k),
        "leaky_k": Op(1, lambda x, s: nn.leaky_relu(x, s), lambda d, x: {"s": d.choice([0.01, 0.2])},
                      _k1(lambda x, s: x > 0), k),
        "elu_k": Op(1, lambda x, a: nn.elu(x, a), lambda d, x: {"a": d.choice([1.0, 0.5])},
                    _k1(lambda x, a: x > 0), k),
        "abs_k": Op(1, np.abs, _any, _k1(_sgn), k),
        "abs_op_k": Op(1, lambda x: abs(x), _any, _k1(_sgn), k),
        "maximum_k": Op(2, np.maximum, _any, lambda x, y: [(_sgn(x - y), True)], k),
        "minimum_k": Op(2, np.minimum, _any, lambda x, y: [(_sgn(x - y), True)], k),
        "clip_k": Op(1, _clip, _draw_clip,
                     lambda x, lo, hi, method: [(_sgn(x - lo), True), (_sgn(x - hi), True)], k),
        "extreme_k": Op(1, _extreme, _draw_extreme, _extreme_kinks, k),
        "sort_k": Op(1, _sort, _draw_sort, _sort_kinks, k),
        "maxout_k": Op(1, lambda x, pieces, axis: nn.maxout(x, pieces, axis), _draw_maxout,
                       _maxout_kinks, k),
        "masked": Op(2, _masked, _draw_masked, _masked_kinks, "mask"),
        "sign_mul": Op(2, _sign_mul, _any, lambda x, y: [(_sgn(x), False)], "mask"),
        "log_where": Op(1, _log_where, _draw_log_where, lambda x: [(x > 0, False)], "mask"),
        "bool_index": Op(1, lambda x, m: x[m], _draw_bool_index, None, "mask"),
        "write": Op(1, _write, _draw_write, None, "mask"),
        "where_const_nb": Op(2, _where_const, _draw_where_const, None, "nonbool"),
        "where_int_nb": Op(2, _masked, _draw_where_int, _masked_kinks, "nonbool"),
        "where_traced_nb": Op(3, _where_traced, _draw_where_traced,
                              lambda z, x, y: [(z != 0, False)], "nonbool"),
        "inf_branch": Op(1, _inf_branch, _draw_inf, _inf_kinks, "inf_branch", terminal=True),
        "zero_form": Op(1, _zero_form, _draw_zero_form, None, "signed_zero"),
        "zconst": Op(1, _zconst, _draw_zconst, None, "signed_zero"),
        "pow0": Op(1, _pow0, _draw_pow0, None, "pow0"),
        "mean_big": Op(1, _mean_big, lambda d, x: {"k": d.choice([4100, 8200])}, None, "f16_mean"),
        "conv2d": Op(2, _conv, _draw_conv, None, "nn"),
        "conv1d": Op(1, _conv1d, _draw_conv1d, None, "nn"),
        "pool": Op(1, _pool, _draw_pool, _pool_kinks, "nn"),
        "dropout": Op(1, _dropout, _draw_dropout, None, "nn"),
        "flatten": Op(1, lambda x, a: nn.flatten(x, a),
                      lambda d, x: {"a": d.int(0, np.ndim(x) - 1)} if np.ndim(x) else None, None, "nn"),
        "sigmoid_nn": Op(1, nn.sigmoid, _any, None, "nn"),
        "einsum": Op(2, lambda x, y: np.einsum("...i,...i->...", x, y), _draw_einsum),
        "cumsum": Op(1, lambda x, axis: np.cumsum(x, axis=axis), _draw_scan, None, "reductions"),
        "cumprod": Op(1, lambda x, axis: x.cumprod(axis=axis), _draw_scan, None, "reductions"),
        "spread": Op(1, _spread, _draw_spread, None, "reductions"),
        "argmin": Op(1, _pick, _draw_pick("argmin"), None, "reductions"),
        "any": Op(1, _pick, _draw_pick("any"), None, "reductions"),
        "all": Op(1, _pick, _draw_pick("all"), None, "reductions"),
        "tanh_nn": Op(1, nn.tanh, _any, None, "nn"),
    })
    ops.update(_issue14_ops())
    ops.update(_transcendental_ops())
    return ops


def _ok1(pred):
    """A unary op's draw: no params, inputs where ``pred`` holds (inside the domain,
    away from the points where the derivative is infinite)."""
    return lambda d, x: {} if np.all(pred(np.asarray(x))) else None


def _ok2(pred):
    return lambda d, x, y: {} if _bshape(x, y) is not None and np.all(
        pred(np.asarray(x), np.asarray(y))) else None


def _transcendental_ops():
    """The ufuncs of graphc/ops/transcendental.py, hyperbolic.py and logaddexp.py."""
    def inside(x):
        return np.abs(x) < 0.9

    def off_origin(x, y):
        return np.hypot(x, y) > 0.1

    every = _ok1(lambda x: True)
    return {
        "sinh": Op(1, np.sinh, _ok1(lambda x: np.abs(x) < 8)),
        "cosh": Op(1, np.cosh, _ok1(lambda x: np.abs(x) < 8)),
        "arcsin": Op(1, np.arcsin, _ok1(inside)), "arccos": Op(1, np.arccos, _ok1(inside)),
        "arctan": Op(1, np.arctan, every), "arcsinh": Op(1, np.arcsinh, every),
        "arccosh": Op(1, np.arccosh, _ok1(lambda x: x > 1.1)),
        "arctanh": Op(1, np.arctanh, _ok1(inside)),
        "cbrt": Op(1, np.cbrt, _ok1(lambda x: np.abs(x) > 0.1)),
        "reciprocal_u": Op(1, np.reciprocal, _ok1(lambda x: np.abs(x) > 0.1)),
        "log2": Op(1, np.log2, _ok1(lambda x: x > 0.05)),
        "log10": Op(1, np.log10, _ok1(lambda x: x > 0.05)),
        "exp2": Op(1, np.exp2, _ok1(lambda x: x < 8)),
        "hypot": Op(2, np.hypot, _ok2(off_origin)),
        # the angle jumps by 2 pi across the negative x2 axis (x1 = 0, x2 < 0)
        "arctan2": Op(2, np.arctan2, _ok2(lambda x1, x2: off_origin(x1, x2)
                                          & ((np.abs(x1) > 0.05) | (x2 > 0)))),
        "logaddexp": Op(2, np.logaddexp, _ok2(lambda x, y: True)),
        "logaddexp2": Op(2, np.logaddexp2, _ok2(lambda x, y: True)),
    }


TOPS = _ops()

# Registered primitives the generator does not reach, each with the reason (the
# coverage test checks the list is exact).  Empty: all of them are reached, pool_select
# (the VJP of unpool's VJP) through second derivatives of max pooling.
EXCLUDED = {
    # guards record decisions of Python control flow (if/while/int()) while tracing; the
    # generator draws straight-line programs: tests/test_guards.py checks them.
    "guard": "Python control flow, not a drawn op (tests/test_guards.py)",
    # a user's custom_vjp/custom_jvp/checkpoint wrapper, not a NumPy op: tests/test_custom.py
    "custom_vjp_call": "a user-defined rule, not a drawn op (tests/test_custom.py)",
    # np.linalg (graphc/ops/decompositions.py): the generator's arbitrary inputs with special
    # values (0, ties) give singular or indefinite matrices, and its float16 programs meet
    # linalg's float16 TypeError; tests/test_np_linalg.py and the registry tests check them.
    **dict.fromkeys(["inv", "solve", "det", "slogdet", "cholesky", "tril_scaled"],
                    "np.linalg: needs well-conditioned (positive definite) float32/64 matrices"),
}

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0]


# --- programs ----------------------------------------------------------------------------
class Program(TF.Program):
    """A test_fuzz program over TOPS, whose steps also report their kink decisions."""

    def __init__(self, inputs, dtype=np.float64):
        super().__init__(inputs)
        self.dtype = dtype
        self.key = np.int64(0)      # the dropout key, passed as a fourth (traced) argument

    def args(self, dtype=None):
        return [x if dtype is None else x.astype(dtype) for x in self.inputs] + [self.key]

    def __repr__(self):
        lines = [f"inputs ({np.dtype(self.dtype).name}): "
                 f"{[np.asarray(x).tolist() for x in self.inputs]}"]
        n = len(self.inputs)
        for i, (op, args, params) in enumerate(self.steps):
            shown = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in params.items()}
            lines.append(f"v{n + i} = {op}({', '.join(f'v{a}' for a in args)}, {shown})")
        lines.append(f"loss = sum(w * v) over {self.sinks}")
        return "\n".join(lines)

    def run(self, xs, backend="np", decisions=None):
        """All pool values; ``xs`` may end with the dropout key (traced by graphc)."""
        key = xs[3] if len(xs) > 3 else np.int64(0)
        pool = list(xs[:3])
        for op, args, params in self.steps:
            rec = TOPS[op]
            operands = [pool[a] for a in args]
            if "dkey" in params:    # a traced key: a new one gives a new mask, no re-trace
                params = dict(params, dkey=key + params["dkey"])
            if decisions is not None and rec.kinks is not None:
                with np.errstate(all="ignore"):
                    decisions.extend(rec.kinks(*[np.asarray(o) for o in operands], **params))
            fn = rec.fn
            if rec.reference is not None and not any(hasattr(o, "aval") for o in operands):
                fn = rec.reference
            pool.append(fn(*operands, **params))
        return pool

    def loss(self, xs, backend="np", decisions=None):
        pool = self.run(xs, decisions=decisions)
        total = 0.0
        for i, w in zip(self.sinks, self.weights):
            total = total + (pool[i] * w.astype(self.dtype)).sum()
        return total


def _draw_inputs(d, features, n=3, special=None):
    shapes = TF._shapes(d, n)
    xs = []
    for s in shapes:
        x = d.rng.uniform(-2, 2, size=s)
        if special if special is not None else (features - {"base", "nn"} and d.bool()):
            hit = d.rng.random(size=s) < 0.3
            x = np.where(hit, d.rng.choice(SPECIAL, size=s), x)
        xs.append(np.asarray(x, np.float64))
    return xs


def op_names(features):
    return sorted(n for n, o in TOPS.items() if o.feature in features)


def draw_program(seed, features=READY, max_steps=6, ops=None, must=None, special=None):
    """A random program over the ops of ``features`` (``must``: its first step's op;
    ``special``: whether inputs hold special values, by default at random)."""
    d = Draw(seed)
    ops = ops or op_names(features)
    prog = Program(_draw_inputs(d, set(features), special=special))
    prog.key = np.int64(d.int(0, 10**6))
    pool = list(prog.inputs)
    terminal = set()
    for step in range(d.int(1, max_steps)):
        for _attempt in range(12):
            op = must if (must and step == 0) else d.choice(ops)
            rec = TOPS[op]
            live = [i for i in range(len(pool)) if i not in terminal]
            args = [d.choice(live) for _ in range(rec.arity)]
            if d.bool():
                args[0] = live[-1]
            operands = [pool[a] for a in args]
            params = rec.draw(d, *operands)
            if params is None:
                continue
            with np.errstate(all="ignore"):
                try:
                    value = np.asarray(rec.fn(*operands, **(
                        dict(params, dkey=prog.key + params["dkey"]) if "dkey" in params else params)))
                except (ValueError, IndexError, graphc.GraphcError):
                    continue
            if value.size == 0 or not np.all(np.isfinite(value)) or np.max(np.abs(value)) > BOUND:
                continue
            prog.steps.append((op, args, params))
            if rec.terminal:
                terminal.add(len(pool))
            pool.append(value.astype(np.float64))
            break
    n_in = len(prog.inputs)
    extra = d.some(range(n_in, len(pool)), 2) if len(pool) > n_in else []
    prog.sinks = sorted(set(extra) | {len(pool) - 1} | terminal)
    prog.weights = [d.rng.uniform(0.5, 1.5, size=np.shape(pool[i])) for i in prog.sinks]
    return prog


def _as_fn(prog, what):
    """A function of the three inputs and the dropout key (default 0, traced when passed)."""
    if what == "loss":
        def program(x0, x1, x2, key=np.int64(0)):
            return prog.loss([x0, x1, x2, key])
    else:
        def program(x0, x1, x2, key=np.int64(0)):     # every step's value
            return tuple(prog.run([x0, x1, x2, key])[3:])
    return program


# --- value oracle ------------------------------------------------------------------------
def _same_values(g, w, tol, signed=True):
    """Close, with NaN and infinities where NumPy has them and zeros of the same sign."""
    g, w = np.asarray(g), np.asarray(w)
    if g.shape != w.shape or g.dtype != w.dtype:
        return f"shape/dtype {g.shape} {g.dtype} != NumPy's {w.shape} {w.dtype}"
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    if not np.array_equal(np.isnan(g64), np.isnan(w64)):
        return "NaN where NumPy has none (or the reverse)"
    inf = np.isinf(w64)
    if not np.array_equal(g64[inf], w64[inf]) or np.any(np.isinf(g64[~inf])):
        return "infinite where NumPy is finite (or the reverse)"
    fin = np.isfinite(w64)
    scale = max(1.0, float(np.max(np.abs(w64[fin]), initial=0.0)))
    if np.any(np.abs(g64[fin] - w64[fin]) > tol * scale):
        return "values differ"
    zero = fin & (w64 == 0) & (g64 == 0)
    if signed and not np.array_equal(np.signbit(g64[zero]), np.signbit(w64[zero])):
        return "sign of zero differs"
    return None


# Contractions whose sign of zero NumPy leaves to BLAS: ``np.dot(1.5, [[-0.0]])``
# is ``[[0.]]`` (an accumulator that starts at +0.0) while ``np.dot(np.array(1.5),
# [-0.0])`` is ``[-0.]``; graphc may take either path for the same call.
_BLAS_SIGNED_ZERO = {"dot", "matmul", "tensordot"}


def _zero_sign_unspecified(prog):
    """Whether a value of ``prog`` may differ from NumPy's in the sign of zero only.

    Besides the contractions above: graphc records ``log(exp(y))`` as ``y`` (a
    documented stable rewrite: exact, and no overflow for y > 709), which keeps
    the sign of a ``-0.0`` that NumPy's round trip through ``exp`` turns into
    ``+0.0``.  And ``np.partition`` (docs/ops.md): NumPy's arrangement, matched to the
    input by stable rank, where ``0.0`` and ``-0.0`` compare equal and may trade places.
    """
    n = len(prog.inputs)
    return any(op in _BLAS_SIGNED_ZERO
               or op == "log" and args[0] >= n and prog.steps[args[0] - n][0] == "exp"
               or op == "sort_k" and params.get("which") == "partition"
               for op, args, params in prog.steps)


def check_values(prog, signed=True):
    signed = signed and not _zero_sign_unspecified(prog)
    xs = prog.args(prog.dtype)
    got = graphc.compile(_as_fn(prog, "outputs"))(*xs)
    with np.errstate(all="ignore"):
        want = prog.run(xs)[3:]
    for i, (g, w) in enumerate(zip(got, want)):
        why = _same_values(g, w, 1e-10, signed)
        assert why is None, f"v{i + 3}: {why}:\n{g!r}\nvs NumPy\n{w!r}\n{prog}"


# --- gradient oracle: finite differences that know where the kinks are ---------------------------
STATS = {}


def _count(key, n=1):
    STATS[key] = STATS.get(key, 0) + n


def _eval(prog, xs):
    dec = []
    with np.errstate(all="ignore"):
        val = float(prog.loss(list(xs) + [prog.key], decisions=dec))
    return val, dec


def _changed(base, other):
    """(which decision elements differ, one mask per decision; any discontinuous one)."""
    masks, disc = [], False
    for (a, cont), (b, _) in zip(base, other):
        diff = np.asarray(np.asarray(a) != np.asarray(b))
        masks.append(diff)
        disc = disc or bool(diff.any() and not cont)
    return masks, disc


def _any_changed(base, other):
    return any(m.any() for m in _changed(base, other)[0])


def fd_check(prog, grads, eps=1e-6):
    """Compare ``grads`` with central differences coordinate by coordinate."""
    xs = [np.array(x, np.float64) for x in prog.inputs]
    f0, dec0 = _eval(prog, xs)
    scale_f = 1e-10 * max(1.0, abs(f0))
    for i, x in enumerate(xs):
        g = np.asarray(grads[i], np.float64)
        flat = x.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            vals, flipped, disc = {}, None, False
            for h in (eps, -eps, 2 * eps, -2 * eps):
                flat[j] = old + h
                vals[h], dec = _eval(prog, xs)
                masks, dsc = _changed(dec0, dec)
                # the union over both sides: relu flipping on one side and a
                # minimum leaving its tie on the other are two kinks at this point
                flipped = masks if flipped is None else [m | n for m, n in zip(flipped, masks)]
                disc = disc or dsc
            flips = sum(int(np.sum(m)) for m in flipped)
            flat[j] = old
            _count("coords")
            got = float(g.reshape(-1)[j])
            where = f"d loss / d x{i}[{j}] (x = {old!r}): graphc {got!r}"
            if not all(np.isfinite(list(vals.values()))):
                _count("singular")       # not finite within the step: sqrt at 0, ...
                continue
            if disc or flips > 1:
                _count("skipped")
                continue
            if flips == 1:
                # one continuous kink inside the step: AD's convention lies between the
                # one-sided derivatives
                left, right = (f0 - vals[-eps]) / eps, (vals[eps] - f0) / eps
                lo, hi = min(left, right), max(left, right)
                tol = 1e-3 * max(1.0, abs(lo), abs(hi)) + 1e3 * scale_f
                _count("hull")
                assert lo - tol <= got <= hi + tol, \
                    f"{where} outside the one-sided derivatives [{lo}, {hi}] at a kink\n{prog}"
                continue
            d1 = (vals[eps] - vals[-eps]) / (2 * eps)
            d2 = (vals[2 * eps] - vals[-2 * eps]) / (4 * eps)
            bound = 1e-5 * max(1.0, abs(d1)) + 1e4 * scale_f + 4 * abs(d1 - d2)
            assert abs(got - d1) <= bound, f"{where} vs finite differences {d1!r}\n{prog}"


def check_grads(prog):
    f = _as_fn(prog, "loss")
    value, grads = graphc.value_and_grad(f, argnums=(0, 1, 2))(*prog.args())
    with np.errstate(all="ignore"):
        want = float(prog.loss(prog.args()))
    assert abs(value - want) <= 1e-10 * max(1.0, abs(want)), f"loss {value} vs NumPy {want}\n{prog}"
    for i, g in enumerate(grads):
        assert g.shape == np.shape(prog.inputs[i]) and g.dtype == np.float64, \
            f"grad of x{i}: {g.shape} {g.dtype}\n{prog}"
    fd_check(prog, grads)


def check_program(seed, features=READY, **kw):
    prog = draw_program(seed, features, **kw)
    _count("programs")
    check_values(prog, signed="signed_zero" in features)   # the sign of zeros: pending
    check_grads(prog)


def assert_few_skips(limit=0.05, singular=0.05):
    """Skipped coordinates (a discontinuity or several kinks within the FD step) and
    singular ones (the function not finite within the step) stay rare."""
    coords = STATS.get("coords", 0)
    skipped = STATS.get("skipped", 0)
    assert coords > 0
    assert skipped <= limit * coords, f"FD skipped {skipped} of {coords} coordinates: {STATS}"
    assert STATS.get("singular", 0) <= singular * coords, f"too many singular coordinates: {STATS}"
    print(f"\nFD statistics: {STATS}")


# --- float16 ------------------------------------------------------------------------------
EPS16 = float(np.finfo(np.float16).eps)


def _dtype_dependent(prog):
    """np.partition arranges the elements outside kth differently for float16 and float64
    arrays with the same values (NumPy's own choice), so a float64 gradient is no reference."""
    return any(op == "sort_k" and params.get("which") == "partition"
               for op, _, params in prog.steps)


def check_float16(seed, features=READY, **kw):
    """graphc in float16 is no further from float64 than NumPy's own float16 evaluation."""
    prog = draw_program(seed, features, max_steps=4, **kw)
    prog.inputs = [x.astype(np.float16).astype(np.float64) for x in prog.inputs]
    with np.errstate(all="ignore"):
        ref = prog.run(prog.args())[3:]
        ref_grads_ok = all(np.all(np.abs(v) < 100) for v in prog.run(prog.args()))
    if not all(np.all(np.isfinite(r)) for r in ref):
        return
    _count("f16_programs")
    xs16 = prog.args(np.float16)
    got = graphc.compile(_as_fn(prog, "outputs"))(*xs16)
    with np.errstate(all="ignore"):
        eager = prog.run(xs16)[3:]
    for i, (g, e, r) in enumerate(zip(got, eager, ref)):
        g, e = np.asarray(g), np.asarray(e)
        assert g.dtype == e.dtype, f"float16 output v{i + 3}: {g.dtype} vs NumPy {e.dtype}\n{prog}"
        if not np.all(np.isfinite(e.astype(np.float64))):
            continue      # NumPy's float16 overflows too: nothing to compare
        g64, e64 = g.astype(np.float64), e.astype(np.float64)
        assert np.all(np.isfinite(g64)), \
            f"float16 output v{i + 3} not finite where NumPy's float16 is:\n{g}\nvs\n{e}\n{prog}"
        scale = max(1.0, float(np.max(np.abs(r))))
        err_g = float(np.max(np.abs(g64 - r), initial=0.0))
        err_e = float(np.max(np.abs(e64 - r), initial=0.0))
        assert err_g <= 4 * err_e + 8 * EPS16 * scale, \
            f"float16 output v{i + 3} off by {err_g} (NumPy float16: {err_e}):\n{g}\nvs\n{r}\n{prog}"
    if not ref_grads_ok or _dtype_dependent(prog):
        return
    # gradients: float16 results, close to float64 gradients at the same points
    f = _as_fn(prog, "loss")
    prog.dtype = np.float64
    g64 = graphc.grad(f, argnums=(0, 1, 2))(*prog.args())
    scale = max(1.0, max(float(np.max(np.abs(g), initial=0.0)) for g in g64))
    if not np.isfinite(scale) or scale > 1e3:
        return
    prog.dtype = np.float16
    dec64, dec16 = [], []
    with np.errstate(all="ignore"):
        prog.loss(prog.args(), decisions=dec64)
        prog.loss(xs16, decisions=dec16)
    if _any_changed(dec64, dec16):
        _count("f16_kink_skipped")   # float16 rounding picks another side of a kink
        return
    g16 = graphc.grad(f, argnums=(0, 1, 2))(*xs16)
    _count("f16_grads")
    tol = 16 * EPS16 * (1 + len(prog.steps)) * scale
    for i, (a, b) in enumerate(zip(g16, g64)):
        assert a.dtype == np.float16, f"grad of float16 x{i} is {a.dtype}\n{prog}"
        err = np.abs(a.astype(np.float64) - b)
        assert np.all(err <= tol), f"float16 grad of x{i} off by {np.max(err)} (tol {tol}):" \
                                   f"\n{a}\nvs\n{b}\n{prog}"


# --- invalid axes --------------------------------------------------------------------------
_AXIS_CALLS = {
    "sum": lambda x, a: np.sum(x, axis=a), "mean": lambda x, a: np.mean(x, axis=a),
    "max": lambda x, a: np.max(x, axis=a), "min": lambda x, a: np.min(x, axis=a),
    "method_sum": lambda x, a: x.sum(axis=a), "method_max": lambda x, a: x.max(axis=a),
    "concatenate": lambda x, a: np.concatenate([x, x], axis=a),
    "stack": lambda x, a: np.stack([x, x], axis=a),
    "expand_dims": lambda x, a: np.expand_dims(x, a),
    "swapaxes": lambda x, a: np.swapaxes(x, 0, a), "squeeze": lambda x, a: np.squeeze(x, a),
    "transpose": lambda x, a: np.transpose(x, (a,) + tuple(range(1, np.ndim(x)))),
}
_NN_AXIS = {"softmax": nn.softmax, "log_softmax": nn.log_softmax, "logsumexp": nn.logsumexp}


def check_invalid_axis(seed):
    d = Draw(seed)
    shape = tuple(d.ints(1, 3, d.int(0, 3)))
    if d.bool():
        shape = shape + (1,)
    x = d.rng.uniform(-1, 1, size=shape)
    nd = len(shape)
    a = d.int(-nd - 2, nd + 2)
    name = d.choice(sorted(_AXIS_CALLS) + sorted(_NN_AXIS))
    if name in _NN_AXIS:
        call = lambda x: _NN_AXIS[name](x, axis=a)               # noqa: E731
        ref = lambda x: np.max(x, axis=a)                         # the same axis rule  # noqa: E731
    else:
        call = ref = lambda x: _AXIS_CALLS[name](x, a)            # noqa: E731
    try:
        want = ref(x)
    except Exception:   # noqa: BLE001 - NumPy's own errors vary (AxisError, ValueError, ...)
        want = None
    where = f"{name}(x{list(shape)}, axis={a})"
    for what, fn in (("compiled", graphc.compile(lambda x: call(x))), ("eager", call)):
        try:
            got = fn(x)
        except (ValueError, IndexError, TypeError) as e:
            assert want is None, f"{what} {where} raised {e!r}; NumPy gives a result"
            continue
        assert want is not None, f"{what} {where} returned {np.shape(got)}; NumPy raises"
        if name not in _NN_AXIS:
            assert np.allclose(got, want, atol=1e-12), f"{what} {where}: {got} vs NumPy {want}"


# --- grad of grad (reaches pool_select, the VJP of a VJP) --------------------------------------
def check_hvp(seed, features=READY):
    prog = draw_program(seed, features - {"inf_branch"}, max_steps=4)
    f = _as_fn(prog, "loss")
    g = graphc.grad(f)
    v = np.random.default_rng(1).uniform(-1, 1, size=np.shape(prog.inputs[0]))

    def gv(x0, x1, x2, key):
        return np.sum(g(x0, x1, x2, key) * v)

    eps = 1e-5
    x0, x1, x2, key = prog.args()
    decs = [_eval(prog, [x0 + h * v, x1, x2])[1] for h in (0.0, eps, -eps)]
    if _any_changed(decs[0], decs[1]) or _any_changed(decs[0], decs[2]):
        _count("hvp_skipped")    # a kink within the step: the Hessian is not defined there
        return
    _count("hvp")
    hv = graphc.grad(gv)(*prog.args())
    fd = (g(x0 + eps * v, x1, x2, key) - g(x0 - eps * v, x1, x2, key)) / (2 * eps)
    scale = max(1.0, float(np.max(np.abs(fd), initial=0.0)))
    err = float(np.max(np.abs(hv - fd), initial=0.0))
    assert err <= 1e-4 * scale, f"Hessian-vector product off by {err}:\n{hv}\nvs\n{fd}\n{prog}"


# --- coverage of the registry ----------------------------------------------------------------
def _prims(fn, *xs):
    g = graphc.trace(fn, *xs)
    return {data["op"] for _, data in g.nx.nodes(data=True)} & set(REGISTRY)


def test_generator_covers_every_primitive():
    """Every registered primitive appears in the forward, backward or second-order graph
    of some program the generator draws (programs of one forced op, a few seeds each)."""
    seen = set()
    for op in sorted(TOPS):
        drawn = 0
        for seed in range(50):
            prog = draw_program(seed, ALL_FEATURES, max_steps=1, must=op)
            if not prog.steps:
                continue
            if drawn == COVER_SEEDS.get(op, 1):
                break
            drawn += 1
            f = _as_fn(prog, "loss")
            seen |= _prims(lambda *a: graphc.grad(f, argnums=(0, 1, 2))(*a), *prog.args())
            if op == "pool":     # pool_select is the VJP of unpool's VJP: second order
                i = prog.steps[0][1][0]
                v = np.ones(np.shape(prog.inputs[i]))
                f2 = lambda *b: f(*b) ** 2      # nonlinear after the pool  # noqa: E731
                seen |= _prims(lambda *a: graphc.grad(
                    lambda *b: np.sum(graphc.grad(f2, argnums=i)(*b) * v), argnums=i)(*a),
                    *prog.args())
        assert drawn, f"the generator never manages to draw {op}"
    missing = set(REGISTRY) - seen - set(EXCLUDED)
    assert not missing, f"primitives no generated program reaches: {sorted(missing)}"
    assert not (set(EXCLUDED) & seen), "EXCLUDED lists primitives that are reached"


# programs per op (more for the ops whose params pick among several primitives)
COVER_SEEDS = {"sort_k": 4, "pool": 8, "masked": 6, "conv2d": 3, "dropout": 2, "getitem": 3}
COVER_SEEDS.update({"step_m": 30, "div_m": 10, "fmaxmin_k": 6, "pred_m": 14})   # issue 14


# --- the quick profile (make test) -----------------------------------------------------------
@settings(quick, max_examples=50)
@given(SEEDS)
def _quick_programs(seed):
    check_program(seed)


def test_trust_fuzz_programs():
    STATS.clear()
    _quick_programs()
    assert_few_skips()


@settings(quick, max_examples=20)
@given(SEEDS)
def test_trust_fuzz_float16(seed):
    check_float16(seed)


@settings(quick, max_examples=15)
@given(SEEDS)
def test_trust_fuzz_grad_of_grad(seed):
    check_hvp(seed)


def feature_ops(feature):
    """About half the steps from ``feature``, the rest from the READY ops."""
    ops, rest = op_names({feature}), op_names(READY)
    return ops * max(1, len(rest) // len(ops)) + rest


def _feature_quick(feature, n, profile=quick):
    @settings(profile, max_examples=n)
    @given(SEEDS)
    def run(seed):
        check_program(seed, READY | {feature}, ops=feature_ops(feature), special=True)
    return run


@pytest.mark.parametrize("feature", [pytest.param(f, marks=_pending(f)) for f in
                                     ["nonbool", "inf_branch", "pow0", "signed_zero",
                                      "reductions"]])
def test_trust_fuzz_feature(feature):
    """Each PENDING feature on its own (xfail until its fix is merged)."""
    STATS.clear()
    _feature_quick(feature, 20)()
    # Half the steps come from the READY pool, whose step functions (floor, %, ...) skip
    # the coordinates next to their jumps: over only 20 programs that is up to ~10%.
    assert_few_skips(limit=0.1, singular=0.3 if feature == "inf_branch" else 0.05)


@pytest.mark.parametrize("feature", [pytest.param("f16_mean", marks=_pending("f16_mean"))])
def test_trust_fuzz_float16_mean(feature):
    @settings(quick, max_examples=15)
    @given(SEEDS)
    def run(seed):
        check_float16(seed, READY | {feature}, ops=feature_ops(feature))
    run()


@pytest.mark.parametrize("kind", [pytest.param("invalid_axis", marks=_pending("invalid_axis"))])
def test_trust_fuzz_invalid_axis(kind):
    @settings(quick, max_examples=100)
    @given(SEEDS)
    def run(seed):
        check_invalid_axis(seed)
    run()


# --- the long profile (make fuzz) --------------------------------------------------------------
@settings(long, max_examples=5 * LONG)
@given(SEEDS)
def _long_programs(seed):
    check_program(seed, ALL_FEATURES - PENDING, max_steps=8)


@pytest.mark.fuzz
def test_trust_fuzz_long_programs():
    STATS.clear()
    _long_programs()
    assert_few_skips()


@pytest.mark.fuzz
@settings(long, max_examples=5 * LONG)
@given(SEEDS)
def test_trust_fuzz_long_float16(seed):
    check_float16(seed)


@pytest.mark.fuzz
@settings(long, max_examples=max(1, LONG // 4))
@given(SEEDS)
def test_trust_fuzz_long_grad_of_grad(seed):
    check_hvp(seed)


@pytest.mark.fuzz
@pytest.mark.parametrize("feature", [pytest.param(f, marks=_pending(f)) for f in
                                     ["nonbool", "inf_branch", "pow0", "signed_zero",
                                      "reductions"]])
def test_trust_fuzz_long_feature(feature):
    STATS.clear()
    _feature_quick(feature, max(1, LONG // 2), long)()
    assert_few_skips(singular=0.3 if feature == "inf_branch" else 0.05)


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", [pytest.param("invalid_axis", marks=_pending("invalid_axis"))])
def test_trust_fuzz_long_invalid_axis(kind):
    @settings(long, max_examples=LONG)
    @given(SEEDS)
    def run(seed):
        check_invalid_axis(seed)
    run()


# --- regressions found by this fuzzer ---------------------------------------------------------
def test_clip_keeps_the_sign_of_zero_as_numpy():
    """np.clip returns x itself where x equals a bound: clip(-0.0, 0.0, 1.0) is -0.0.
    graphc's clip was np.maximum(x, lo) / np.minimum(x, hi), which return their second
    argument at a tie (found by the signed_zero feature)."""
    a = np.array([-0.0, 0.0, -1.0, 2.0, np.nan, 0.5])
    for lo, hi in [(0.0, 1.0), (-0.0, 0.0), (0.0, 0.0), (-1.0, -0.0)]:
        for fn in (lambda x: np.clip(x, lo, hi), lambda x: x.clip(lo, hi)):
            got, want = graphc.compile(fn)(a), np.clip(a, lo, hi)
            assert _same_values(got, want, 0.0) is None, (lo, hi, got, want)
    # the gradient is unchanged: 1 inside, 0 outside, a tie split half/half
    g = graphc.grad(lambda x: np.sum(np.clip(x, 0.0, 1.0)))(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]))
    assert g.tolist() == [0.0, 0.5, 1.0, 0.5, 0.0]
