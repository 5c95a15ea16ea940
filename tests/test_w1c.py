"""Issue 18, `w1c` branch: the floats-only call path (W1) and W3's generated code.

W1: a signature of exact Python floats whose code has a ``math`` body runs a variant of
that code that tests the argument types itself and answers ``_NOT_FLOATS`` for
anything else (``codegen_scalar.floats_only_variant``); ``Compiled.__call__`` calls it
first while its entry is the last one used, and takes the cache key for anything it
declines.  These tests check that no other signature is ever served by it, that the
sentinel never reaches a caller, and that the cache bookkeeping (LRU, cache_clear,
pickling, threads) is kept.
"""
import linecache
import pickle
import re
import threading

import numpy as np
import pytest

import graphc
from graphc import codegen, codegen_scalar, floats_call

import _libm


def lecture_f(w1, w2):
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    return z4 * z5


def _numpy_only(fn, *args, **kw):
    """The same transform with the NumPy body only (no `math` code): the reference."""
    codegen_scalar.ENABLED = False
    try:
        return fn(lecture_f if not kw.get("f") else kw["f"], argnums=(0, 1))(*args)
    finally:
        codegen_scalar.ENABLED = True


def _same(a, b):
    """Same structure, same types, same bits."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
        return
    assert type(a) is type(b), (type(a), type(b))
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (a, b)


def _message(e):
    """An error's first line without the caller's file:line (the two calls differ)."""
    return re.sub(r"^\S+:\d+: ", "", str(e).splitlines()[0])


@pytest.mark.skipif(not _libm.LECTURE, reason=_libm.REASON)
def test_hot_entry_is_the_last_float_entry():
    vg = graphc.value_and_grad(lecture_f, argnums=(0, 1))
    assert vg._hot == floats_call.NO_HOT
    out = vg(1.5, 0.5)
    n, fn = vg._hot
    assert n == 2 and fn is vg._last.fn
    _same(out, _numpy_only(graphc.value_and_grad, 1.5, 0.5))
    # another signature becomes the last entry: the floats-only code is not called first
    vg(np.float64(1.5), 0.5)
    assert vg._hot == floats_call.NO_HOT
    _same(vg(1.5, 0.5), out)
    assert vg._hot[0] == 2


@pytest.mark.skipif(not _libm.LECTURE, reason=_libm.REASON)
def test_executed_variant_differs_from_the_source_in_one_line():
    vg = graphc.value_and_grad(lecture_f, argnums=(0, 1))
    vg(1.5, 0.5)
    entry = vg._last
    assert entry.floats_only and vg._hot == (2, entry.fn)
    ran = linecache.getlines(entry.fn.__code__.co_filename)
    assert "".join(ran) == entry.source          # tracebacks show the source
    fast = codegen.generate_module(entry.graph, entry.func_name).fast
    hot = codegen_scalar.floats_only_variant(fast)
    diff = [(a, b) for a, b in zip(fast.split("\n"), hot.split("\n")) if a != b]
    assert hot.count("\n") == fast.count("\n") and len(diff) == 1, diff
    assert "raise _UseNumPy" in diff[0][0] and "return _NOT_FLOATS" in diff[0][1]
    # the source users read and export is unchanged
    assert "_NOT_FLOATS" not in entry.source
    # no `math` body: no variant
    g = graphc.grad(lambda a: np.logaddexp(a, 0.0) * a)   # (logaddexp: no scalar form)
    g(0.5)
    assert codegen_scalar.floats_only_variant(g._last.source) is None


def test_every_other_signature_takes_the_key_while_hot():
    """Called right after a float call (the floats-only code first), each of these must
    give what a fresh compiled function gives it: values, types, errors."""
    class F(float):
        def __mul__(self, other):          # its own arithmetic: NumPy's code never calls it
            return float.__mul__(self, other)

    cases = [(F(1.5), 0.5), (1.5, F(0.5)), (np.float64(1.5), 0.5), (1.5, np.float32(0.5)),
             (np.array(1.5), 0.5), (np.array([1.5, 2.0]), np.array([0.5, 0.25])),
             (1.5, 1), (True, 0.5), (1.5,), (1.5, 0.5, 2.0)]
    vg = graphc.value_and_grad(lecture_f, argnums=(0, 1))
    for args in cases:
        fresh = graphc.value_and_grad(lecture_f, argnums=(0, 1))
        try:
            want = fresh(*args)
        except graphc.GraphcError as e:
            want = e
        vg(1.5, 0.5)
        assert vg._hot[0] == 2
        if isinstance(want, Exception):
            with pytest.raises(type(want)) as got:
                vg(*args)
            assert _message(got.value) == _message(want)
        else:
            got = vg(*args)
            if isinstance(want[0], np.ndarray) and want[0].ndim:
                np.testing.assert_array_equal(got[0], want[0])
                for a, b in zip(got[1], want[1]):
                    assert a.dtype == b.dtype
                    np.testing.assert_array_equal(a, b)
            else:
                _same(got, want)
    # keywords: the general key, the same values
    vg(1.5, 0.5)
    _same(vg(1.5, w2=0.5), vg(1.5, 0.5))
    _same(vg(w1=1.5, w2=0.5), vg(1.5, 0.5))


def test_sentinel_never_reaches_the_caller():
    f = graphc.compile(lambda a, b: a * b + np.sin(a))
    assert f(2.0, 3.0) == 6.0 + np.sin(2.0)
    for args in [(2, 3.0), ([2.0], 3.0), ("x", 3.0), (None, 3.0), (2.0, np.float16(3.0))]:
        f(2.0, 3.0)
        try:
            out = f(*args)
        except graphc.GraphcError:
            continue
        assert out is not floats_call.NOT_FLOATS


def test_inside_another_transform_records_into_the_trace():
    vg = graphc.value_and_grad(lecture_f, argnums=(0, 1))
    vg(1.5, 0.5)                               # hot
    outer = graphc.grad(lambda a, b: vg(a, b)[0] * 2.0, argnums=(0, 1))
    got = outer(1.5, 0.5)
    want = vg(1.5, 0.5)[1]
    np.testing.assert_allclose(got, [2 * want[0], 2 * want[1]], rtol=1e-13)


def test_cache_clear_and_lru_keep_the_hot_entry_honest():
    traces = []

    def f(a, b):
        traces.append(1)
        return a * np.exp(b)

    c = graphc.compile(f, cache_size=2)
    c(1.0, 2.0)
    c(1.0, 2.0)
    assert len(traces) == 1 and c._hot[0] == 2
    c.cache_clear()
    assert c._hot == floats_call.NO_HOT
    assert c(1.0, 2.0) == 1.0 * np.exp(2.0)
    assert len(traces) == 2                    # traced again after cache_clear
    # two other signatures evict the float entry (cache_size=2): the next float call traces
    c(np.float32(1.0), np.float32(2.0))
    c(np.float16(1.0), np.float16(2.0))
    assert len(traces) == 4 and (float, float) not in c._cache
    assert c(1.0, 2.0) == 1.0 * np.exp(2.0) and len(traces) == 5


def test_pickle_drops_the_hot_entry():
    vg = graphc.value_and_grad(lecture_f, argnums=(0, 1))
    vg(1.5, 0.5)
    vg2 = pickle.loads(pickle.dumps(vg))
    assert vg2._hot == floats_call.NO_HOT
    _same(vg2(1.5, 0.5), vg(1.5, 0.5))


def test_threads_mixing_floats_and_arrays():
    vg = graphc.value_and_grad(lecture_f, argnums=(0, 1))
    want_f = vg(1.5, 0.5)
    xs, ys = np.array([1.5, 2.0]), np.array([0.5, 0.25])
    sum_f = graphc.value_and_grad(lambda a, b: lecture_f(a, b).sum(), argnums=(0, 1))
    want_a = sum_f(xs, ys)
    errors = []

    def work(i):
        try:
            for k in range(300):
                if (i + k) % 3:
                    _same(vg(1.5, 0.5), want_f)
                else:
                    got = vg(np.float64(1.5), 0.5)
                    assert type(got[0]) is np.float64 and got[0] == want_f[0]
                    np.testing.assert_array_equal(sum_f(xs, ys)[1][0], want_a[1][0])
        except Exception as e:           # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_without_a_math_body_a_type_test_runs_first():
    # logaddexp keeps NumPy's code (its record has no scalar form)
    g = graphc.grad(lambda a: np.logaddexp(a, 0.0) * a)
    sigmoid = 1 / (1 + np.exp(-0.5))
    assert g(0.5) == pytest.approx(np.logaddexp(0.5, 0.0) + 0.5 * sigmoid, rel=1e-14)
    n, hot = g._hot
    assert n == 1 and hot is not g._last.fn and not g._last.floats_only
    assert hot(np.float64(0.5)) is floats_call.NOT_FLOATS and hot(0.5) == g(0.5)
    assert type(g(np.float32(0.5))) is np.float32 and g._hot == floats_call.NO_HOT
    # a closed-over array: passed at each call, never this path
    w = np.array([1.0, 2.0])
    h = graphc.compile(lambda a: (a * w).sum())
    assert h(2.0) == 6.0 and h._hot == floats_call.NO_HOT


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5])
def test_checked_tests_every_argument(n):
    fn = floats_call.checked(lambda *a: sum(a, 0.0), n)
    args = [float(i) for i in range(n)]
    assert fn(*args) == sum(args)
    for i in range(n):
        for other in (1, np.float64(1.0), True, np.array(1.0)):
            bad = list(args)
            bad[i] = other
            assert fn(*bad) is floats_call.NOT_FLOATS


def test_guarded_paths_of_floats():
    def f(a, b):
        if a > b:                      # a guard: one path per decision (graphc/guard_paths.py)
            return a * b
        return a - b

    c = graphc.compile(f)
    assert c(2.0, 1.0) == 2.0 and c._hot[0] == 2
    assert c(1.0, 2.0) == -1.0 and c(3.0, 2.0) == 6.0 and c(0.0, 5.0) == -5.0
    assert c(np.float64(1.0), 2.0) == -1.0 and c(3.0, 2.0) == 6.0


def test_errstate_and_fallback_still_numpy_on_the_hot_path():
    vg = graphc.value_and_grad(lambda a, b: a / b, argnums=(0, 1))
    vg(1.0, 2.0)
    assert vg._hot[0] == 2
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        out = vg(1.0, 0.0)
    assert type(out[0]) is np.float64 and np.isinf(out[0])
    with np.errstate(all="raise"):
        with pytest.raises(FloatingPointError):
            vg(1.0, 0.0)
    with np.errstate(under="warn"):
        with pytest.warns(RuntimeWarning, match="underflow"):
            vg(1e-300, 1e300)


# --- W3: -(-a * b) is a * b (graphc/passes/neg_cancel.py) ------------------------------------
def _without_neg_cancel(monkeypatch):
    import importlib
    simplify = importlib.import_module("graphc.passes.simplify")
    from graphc.passes.neg_cancel import cancel_negations
    monkeypatch.setattr(simplify, "_RULES", tuple(r for r in simplify._RULES
                                                  if r is not cancel_negations))


def _special(rng, shape, dtype):
    x = rng.normal(size=shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -3.0, 2.5]
    return x


@pytest.mark.parametrize("form", ["-(-a * b)", "-(b * -a)", "-(-a / b)", "-(b / -a)"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negations_cancel_exactly(form, dtype):
    rng = np.random.default_rng(7)
    a, b = _special(rng, (64,), dtype), _special(rng, (64,), dtype)[::-1].copy()
    f = graphc.compile(eval(f"lambda a, b: {form}"))
    src = f.source(a, b)
    assert "-" not in src.split("# The arguments")[0], src      # the function: no negation
    with np.errstate(all="ignore"):
        got, want = f(a, b), eval(form)
    assert got.dtype == want.dtype
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    # every number bit for bit, zeros' signs included (a nan's sign bit may differ)
    assert got[~nan].tobytes() == want[~nan].tobytes()


def test_negations_kept_where_they_do_not_cancel():
    x = np.array([1, -2, 3], dtype=np.int32)
    f = graphc.compile(lambda a, b: -(-a * b))          # integers: left alone
    assert f.source(x, x).count("-") >= 2
    np.testing.assert_array_equal(f(x, x), -(-x * x))
    y = np.array([0.5, -2.0, 3.0])
    g = graphc.compile(lambda a, b: -(-a * b) + (-a))   # the inner negation has another use
    np.testing.assert_array_equal(g(y, y), -(-y * y) + (-y))
    h = graphc.compile(lambda a: -((-a) * (-a)))        # both factors: one negation stays
    np.testing.assert_array_equal(h(y), -(y * y))


def test_w3_gradient_bit_for_bit_without_the_negations(monkeypatch):
    from benchmarks import workloads as W
    rng = np.random.default_rng(3)
    p, (x, y) = W.sig_params(rng), W.sig_data(rng)
    vg = graphc.value_and_grad(W.sig_loss_np)
    src = vg.source(p, x, y)
    assert "-(-" not in src and "= -(d_" not in src
    new = vg(p, x, y)
    _without_neg_cancel(monkeypatch)
    old_vg = graphc.value_and_grad(W.sig_loss_np)
    assert "-(d_" in old_vg.source(p, x, y)
    old = old_vg(p, x, y)
    assert new[0].tobytes() == old[0].tobytes()
    for k in W.SIG_KEYS:
        assert new[1][k].dtype == old[1][k].dtype and new[1][k].tobytes() == old[1][k].tobytes(), k
    ref = W.sig_value_and_grad_numpy(p, x, y)
    for k in W.SIG_KEYS:
        np.testing.assert_allclose(new[1][k], ref[1][k], rtol=2e-5, atol=1e-7)
