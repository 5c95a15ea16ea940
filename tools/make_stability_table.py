"""Regenerate docs/stability.md: graphc.nn at extreme inputs vs an mpmath reference.

    python tools/make_stability_table.py [--check]

For every activation, loss and softmax-family function of graphc.nn, at
inputs of scale ``p`` in {±1e4, 0, ±1e-300} (float64) and {±3e38, ±100}
(float32: near its overflow, and where ``exp`` overflows), this computes

* the value, eagerly on NumPy arrays and through ``graphc.compile``, and
* the gradient of ``sum(w * f(x))`` (fixed weights ``w``) through ``graphc.grad``,

and compares them with the same quantities computed in mpmath at 60 digits
from closed forms (rounded once to the dtype).  A cell passes when every
result is finite and within the tolerance of the reference: relative 1e-12
(float64) or 1e-5 (float32), or an absolute error below the dtype's smallest
normal number (results that underflow, such as ``sigmoid(-1e4)``, are 0).
A reference that itself does not fit the dtype (``mse`` of 3e38 in float32
is 9e76) must come out as ``inf`` of the right sign; the cell says so.

``--check`` exits 1 when the committed table differs from a fresh one
(tests/test_stability.py does the same).  The cases are the test suite's:
tests/test_stability.py parametrizes over :data:`CASES`.
"""
from __future__ import annotations

import argparse
import functools
import pathlib
import sys
import warnings

import mpmath as mp
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import graphc  # noqa: E402

DOC = ROOT / "docs" / "stability.md"
mp.mp.dps = 60

POINTS = [("float64", 1e4), ("float64", -1e4), ("float64", 0.0), ("float64", 1e-300),
          ("float64", -1e-300), ("float32", 3e38), ("float32", -3e38), ("float32", 100.0),
          ("float32", -100.0)]


# --- references in mpmath: value and gradient of sum(w * f(x)) ----------------------------
def _mpv(a):
    return np.vectorize(lambda t: mp.mpf(float(t)), otypes=[object])(np.asarray(a))


def _sig(t):
    return 1 / (1 + mp.exp(-t))


def _elementwise(f, df):
    def ref(x, w):
        x = _mpv(x)
        return (np.vectorize(f, otypes=[object])(x),
                np.vectorize(df, otypes=[object])(x) * _mpv(w))
    return ref


def _softmax_rows(x):
    e = np.vectorize(mp.exp, otypes=[object])(x)
    return e / e.sum(axis=-1, keepdims=True)


def _ref_softmax(x, w):
    x, w = _mpv(x), _mpv(w)
    s = _softmax_rows(x)
    return s, s * (w - (s * w).sum(axis=-1, keepdims=True))


def _ref_log_softmax(x, w):
    x, w = _mpv(x), _mpv(w)
    s = _softmax_rows(x)
    lse = np.vectorize(mp.log, otypes=[object])(
        np.vectorize(mp.exp, otypes=[object])(x).sum(axis=-1, keepdims=True))
    return x - lse, w - s * w.sum(axis=-1, keepdims=True)


def _ref_logsumexp(x, w):
    x, w = _mpv(x), _mpv(w)
    s = _softmax_rows(x)
    e = np.vectorize(mp.exp, otypes=[object])(x).sum(axis=-1)
    return np.vectorize(mp.log, otypes=[object])(e), s * w[..., None]


def _ref_maxout(x, w):   # pieces=2 along the last axis; ties share the gradient equally
    x, w = _mpv(x), _mpv(w)
    g = x.reshape(x.shape[:-1] + (x.shape[-1] // 2, 2))
    m = np.vectorize(lambda a, b: max(a, b), otypes=[object])(g[..., 0], g[..., 1])
    hit = (g == m[..., None]).astype(object)
    share = hit / hit.sum(axis=-1, keepdims=True)
    return m, (share * w[..., None]).reshape(x.shape)


LABELS = np.array([1, 0])
TARGETS = np.array([[0.25, 0.25, 0.5], [0.5, 0.5, 0.0]])
SIGNS = np.array([1.0, -1.0, -1.0, 1.0])


def _ref_ce_labels(x, w):
    x = _mpv(x)
    n = x.shape[0]
    logp, _ = _ref_log_softmax(x, np.zeros(x.shape))
    onehot = np.zeros(x.shape, dtype=object)
    onehot[np.arange(n), LABELS] = 1
    loss = -sum(logp[i, LABELS[i]] for i in range(n)) / n
    return np.array(loss, dtype=object), (_softmax_rows(x) - onehot) / n * _mpv(w)


def _ref_ce_probs(x, w):
    x, t = _mpv(x), _mpv(TARGETS)
    n = x.shape[0]
    logp, _ = _ref_log_softmax(x, np.zeros(x.shape))
    loss = -(t * logp).sum() / n
    return np.array(loss, dtype=object), (_softmax_rows(x) * t.sum(-1, keepdims=True) - t) / n * _mpv(w)


def _ref_logistic(x, w):
    x, y = _mpv(x), _mpv(SIGNS)
    n = x.size
    m = -y * x
    loss = sum(mp.log(1 + mp.exp(t)) for t in m.ravel()) / n
    return np.array(loss, dtype=object), -y * np.vectorize(_sig, otypes=[object])(m) / n * _mpv(w)


def _ref_mse(x, w):
    x = _mpv(x)
    n = x.size
    return np.array((x * x).sum() / n, dtype=object), 2 * x / n * _mpv(w)


# --- the cases ---------------------------------------------------------------------------
def _spread(p):
    """Inputs of scale p: p itself and its differences (the softmax family's stress)."""
    return [p, p / 2, 0.0, -p] if p else [0.0, 0.0, 0.0, 0.0]


def _vec(p):
    return np.array(_spread(p))


def _rows(p):
    return np.array([[p, p / 2, 0.0], [0.0, p / 2, p]])


def _hand_log_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.log(e / e.sum(axis=-1, keepdims=True))


nn = graphc.nn
# name -> (graphc function of x, input builder, reference)
FUNCTIONS = {
    "sigmoid": (nn.sigmoid, _vec, _elementwise(_sig, lambda t: _sig(t) * _sig(-t))),
    "relu": (nn.relu, _vec, _elementwise(lambda t: t if t > 0 else mp.mpf(0),
                                          lambda t: mp.mpf(1 if t > 0 else 0))),
    "leaky_relu": (nn.leaky_relu, _vec,
                   _elementwise(lambda t: t if t > 0 else mp.mpf("0.01") * t,
                                lambda t: mp.mpf(1) if t > 0 else mp.mpf("0.01"))),
    "elu": (nn.elu, _vec, _elementwise(lambda t: t if t > 0 else mp.expm1(t),
                                        lambda t: mp.mpf(1) if t > 0 else mp.exp(t))),
    "softplus": (nn.softplus, _vec, _elementwise(lambda t: mp.log1p(mp.exp(t)), _sig)),
    "tanh": (lambda x: np.tanh(x), _vec, _elementwise(mp.tanh, lambda t: 1 / mp.cosh(t) ** 2)),
    "maxout": (lambda x: nn.maxout(x, 2), _vec, _ref_maxout),
    "softmax": (nn.softmax, _rows, _ref_softmax),
    "log_softmax": (nn.log_softmax, _rows, _ref_log_softmax),
    "logsumexp": (nn.logsumexp, _rows, _ref_logsumexp),
    "log(softmax) (rewritten)": (lambda x: np.log(nn.softmax(x)), _rows, _ref_log_softmax),
    "log(e / e.sum()) (rewritten)": (_hand_log_softmax, _rows, _ref_log_softmax),
    "log(1 + exp(x)) (rewritten)": (lambda x: np.log(1 + np.exp(x)), _vec,
                                    _elementwise(lambda t: mp.log1p(mp.exp(t)), _sig)),
    "cross_entropy (labels)": (lambda x: nn.cross_entropy(x, LABELS), _rows, _ref_ce_labels),
    "cross_entropy (probs)": (lambda x: nn.cross_entropy(x, TARGETS.astype(x.dtype)), _rows,
                              _ref_ce_probs),
    "logistic_loss": (lambda x: nn.logistic_loss(x, SIGNS.astype(x.dtype)), _vec, _ref_logistic),
    "mse": (lambda x: nn.mse(x, np.zeros_like(x)), _vec, _ref_mse),
}

SHIFT_INVARIANT = {"softmax", "log_softmax", "logsumexp", "log(softmax) (rewritten)",
                   "log(e / e.sum()) (rewritten)",
                   "cross_entropy (labels)", "cross_entropy (probs)"}
CASES = [(name, dtype, p) for name in FUNCTIONS for dtype, p in POINTS]


def _weights(shape):
    return (np.arange(int(np.prod(shape))).reshape(shape) % 3 + 1.0)


def _round(ref, dtype):
    """The reference rounded once to ``dtype`` (mpf -> float64 -> dtype)."""
    with np.errstate(over="ignore"):
        return np.vectorize(lambda t: float(t), otypes=[np.float64])(ref).astype(dtype)


def _close(got, want, dtype, scale=0.0):
    """Each element within ``rtol * (|want| + scale)``, or below the smallest normal."""
    got = np.asarray(got)
    if got.shape != want.shape or got.dtype != np.dtype(dtype):
        return False
    rtol = 1e-12 if np.dtype(dtype) == np.float64 else 1e-5
    tiny = np.finfo(dtype).tiny
    with np.errstate(all="ignore"):
        same_inf = np.isinf(want) & (got == want)
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        bound = rtol * (np.abs(want.astype(np.float64)) + scale)
        ok = same_inf | (np.isfinite(got) & ((err <= bound) | (err <= tiny)))
    return bool(np.all(ok))


@functools.lru_cache(maxsize=None)   # the tests run each case, then the whole table
def run_case(name, dtype, p):
    """``(ok, note)`` for one function at one input scale."""
    fn, build, ref = FUNCTIONS[name]
    x = build(p).astype(dtype)
    if name == "maxout" or name == "mse" or name == "logistic_loss":
        x = x.reshape(4)
    out_shape = np.shape(ref(x, np.ones(()))[0])
    w = _weights(out_shape)
    want_v, want_g = ref(x, w)
    want_v = _round(want_v, dtype)
    want_g = _round(np.asarray(want_g, dtype=object).reshape(x.shape), dtype)
    wt = w.astype(dtype)
    # Overflow, division by zero and invalid values must not happen unless the true
    # result itself overflows; underflow to 0 (NumPy's default: silent) is fine.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
            # a hand-written chain is plain NumPy on arrays: only its compiled form is graphc's
            eager = np.asarray((graphc.compile(fn) if "rewritten" in name else fn)(x))
            compiled = np.asarray(graphc.compile(fn)(x))
            grad = graphc.grad(lambda x: np.sum(fn(x) * wt))(x)
    notes = []
    overflow_v = not np.all(np.isfinite(want_v))
    overflow_g = not np.all(np.isfinite(want_g))
    # Elementwise functions: every element to full relative accuracy.  Shift-invariant
    # ones (softmax family, cross-entropy) compute x - max(x), whose rounding is of
    # order eps * max|x| in every output, and their Jacobians are bounded by 1, so
    # their errors are measured against max|x| (values) and max|w| (gradients).
    sv, sg = (float(np.max(np.abs(x))), float(np.max(w))) if name in SHIFT_INVARIANT else (0.0, 0.0)
    if not _close(eager, want_v, dtype, sv):
        notes.append(f"value {eager.tolist()} != {want_v.tolist()}")
    elif not _close(compiled, want_v, dtype, sv):
        notes.append(f"compiled value {compiled.tolist()} != {want_v.tolist()}")
    if not _close(grad, want_g, dtype, sg):
        notes.append(f"grad {np.asarray(grad).tolist()} != {want_g.tolist()}")
    if caught and not (overflow_v or overflow_g):
        notes.append("warning: " + "; ".join(sorted({str(c.message) for c in caught})))
    if notes:
        return False, "; ".join(notes)
    if overflow_v or overflow_g:
        return True, "true " + ("value" if overflow_v else "gradient") + " overflows: inf"
    return True, ""


def _p_text(dtype, p):
    t = "0" if p == 0 else f"{p:+.0e}".replace("e+0", "e").replace("e-0", "e-").replace("+1e2", "+100") \
        .replace("-1e2", "-100")
    return f"{t} ({'f64' if dtype == 'float64' else 'f32'})"


def table() -> str:
    lines = [
        "# Numerical stability at extreme inputs",
        "",
        "Generated by `python tools/make_stability_table.py`; do not edit (tests/test_stability.py",
        "fails when this file is stale).",
        "",
        "Every activation, loss and softmax-family function of `graphc.nn` (and the stable",
        "rewrites of hand-written chains), at inputs of scale `p`: elementwise functions see",
        "`x = [p, p/2, 0, -p]`; the softmax family and cross-entropy see the rows",
        "`[[p, p/2, 0], [0, p/2, p]]` (labels `[1, 0]`, or probabilities",
        "`[[.25, .25, .5], [.5, .5, 0]]`); `logistic_loss` uses `y = [1, -1, -1, 1]`, `mse` a zero",
        "target.  A cell is ✓ when the value (eager on arrays, and compiled) and the gradient of",
        "`sum(w * f(x))` (`graphc.grad`) are finite and match mpmath at 60 digits rounded to the",
        "dtype: relative error 1e-12 in float64, 1e-5 in float32, or absolute error below the",
        "smallest normal number (values that underflow are 0), element by element.  The",
        "shift-invariant functions (softmax family, cross-entropy) compute `x - max(x)`, whose",
        "rounding is of order `eps * max|x|` in every output, and have Jacobians bounded by 1: their",
        "values may be off by `rtol * max|x|` and gradients by `rtol * max|w|` (so in float32",
        "`log_softmax([-100, -50, 0])[2]` may be 0 rather than -1.9e-22).  ✓∞ marks a true value",
        "that does not fit the dtype (`mse` of 3e38 in float32 is 9e76) and comes out as `inf`, as",
        "it must.",
        "NumPy emits no overflow, division or invalid-value warning in any ✓ cell but the ✓∞ ones.",
        "",
    ]
    head = "| function | " + " | ".join(_p_text(d, p) for d, p in POINTS) + " |"
    lines += [head, "|" + "---|" * (len(POINTS) + 1)]
    failures = []
    for name in FUNCTIONS:
        cells = []
        for dtype, p in POINTS:
            ok, note = run_case(name, dtype, p)
            if ok:
                cells.append("✓∞" if note else "✓")
            else:
                cells.append("✗")
                failures.append(f"- `{name}` at {_p_text(dtype, p)}: {note}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines.append("")
    if failures:
        lines += ["Failures:", ""] + failures + [""]
    else:
        lines += [f"All {len(CASES)} cells pass.", ""]
    lines += _rewrites_section()
    return "\n".join(lines)


def _rewrites_section():
    """The stable rewrites, from graphc/rewrites.py's own rule docstrings."""
    from graphc import rewrites
    lines = ["## Stable rewrites", "",
             "While tracing, graphc replaces these naive chains by stable primitives",
             "(`graphc/rewrites.py`) before gradients are built from them, so gradients (and",
             "gradients of gradients) come from the stable form too.  The replacement keeps the",
             "user's variable name and `file.py:LINE`; the dead remains of the chain are dropped before code",
             "generation, and a value the user also uses elsewhere is kept.", ""]
    for op, rules in rewrites.RULES.items():
        for rule in rules:
            doc = " ".join(rule.__doc__.split("\n\n")[0].split()).replace("``", "`")
            lines.append(f"- on `{op}`: {doc}")
    lines.append("")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/stability.md is stale")
    args = ap.parse_args(argv)
    text = table()
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC.relative_to(ROOT)} is stale: run python tools/make_stability_table.py")
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
