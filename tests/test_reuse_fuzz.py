"""Random programs with every memory reuse switched on, at any size.

The generated code reuses memory only for large arrays (128 KiB and up): a result written
into a dead argument (``out=``), buffers kept between calls (the workspace), `del` after a
last use, layout copies fused into their producer, full-size operands.  tests/test_fuzz.py's
programs are tiny, so none of that runs there.  Here the size limits are 0 while the code
is generated, and each program is checked three ways:

* against the same program generated with the limits as shipped, up to rounding: the reuse
  changes where values live, and with it the layout a product reads, which picks NumPy's
  loop or BLAS for ``matmul`` (an ulp apart: found by this test, seed 1844646 of the conv
  cases, not a defect);
* a second call with other inputs leaves the first call's results as they were, bit for
  bit (no result lives in a buffer the next call writes), and gives bit for bit what a
  fresh compilation with reuse gives on those inputs (nothing stale read from the buffers);
* the caller's inputs are not written.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given

import graphc
from graphc import codegen, codegen_forms, codegen_layout, codegen_workspace
from _fuzz import SEEDS, long, quick
from test_fuzz import _as_fn, draw_conv_case, draw_program

_LIMITS = ((codegen, "_FREE_BYTES"), (codegen, "_REUSE_BYTES"), (codegen_layout, "_FUSE_BYTES"),
           (codegen_workspace, "WORKSPACE_BYTES"), (codegen_forms, "FULL_BYTES"),
           (codegen_forms, "_SEED_BYTES"))


@contextlib.contextmanager
def reuse_at_any_size():
    """Code generated inside uses every reuse on arrays of any size."""
    saved = [getattr(mod, name) for mod, name in _LIMITS]
    try:
        for mod, name in _LIMITS:
            setattr(mod, name, 0)
        yield
    finally:
        for (mod, name), value in zip(_LIMITS, saved):
            setattr(mod, name, value)


def _leaves(tree):
    return [np.asarray(v) for v in graphc.pytree.flatten(tree)[0]]


def _bits_equal(a, b, what, prog):
    a, b = _leaves(a), _leaves(b)
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape and u.dtype == v.dtype, f"{what}, output {i}\n{prog}"
        assert np.array_equal(u, v, equal_nan=True), f"{what}, output {i}: {u} vs {v}\n{prog}"


def _close(a, b, what, prog):
    a, b = _leaves(a), _leaves(b)
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape and u.dtype == v.dtype, f"{what}, output {i}\n{prog}"
        rtol = 1e-12 if u.dtype == np.float64 else 1e-5
        scale = max(1.0, float(np.max(np.abs(v), initial=0.0)))
        assert np.all(np.abs(u.astype(np.float64) - v) <= rtol * scale), \
            f"{what}, output {i}: {u} vs {v}\n{prog}"


def check(seed, dtype=np.float64):
    prog = draw_program(seed)
    xs = [x.astype(dtype) for x in prog.inputs]
    rng = np.random.default_rng(seed)
    others = [(x + rng.uniform(-0.5, 0.5, np.shape(x))).astype(dtype) for x in xs]
    for kind, make in (("outputs", graphc.compile),
                       ("loss", lambda f: graphc.value_and_grad(f, argnums=(0, 1, 2)))):
        f = _as_fn(prog, kind)
        with np.errstate(all="ignore"):
            with reuse_at_any_size():
                reusing = make(f)
                first = reusing(*xs)                # generated here, with the limits at 0
                want = [v.copy() for v in _leaves(make(f)(*others))]     # a fresh reuse
            kept = [v.copy() for v in _leaves(first)]
            _close(first, make(f)(*xs), f"{kind}: reuse changed a value", prog)
            inputs_before = [x.copy() for x in others]
            second = reusing(*others)
            _bits_equal(kept, _leaves(first), f"{kind}: the second call wrote a first result",
                        prog)
            _bits_equal(second, want, f"{kind}: second call", prog)
            _bits_equal(inputs_before, others, f"{kind}: an input was written", prog)


def check_conv(seed):
    """A random convolution or pooling layer (test_fuzz's), its value and its gradient."""
    name, fn, _, xs = draw_conv_case(seed)
    rng = np.random.default_rng(seed)
    others = [None if x is None else x + rng.uniform(-0.5, 0.5, x.shape) for x in xs]
    wsum = rng.uniform(0.5, 1.5, size=np.shape(fn(*xs)))
    argnums = tuple(i for i, a in enumerate(xs) if a is not None)

    def loss(*a):
        return (fn(*a) * wsum).sum()
    for what, make in (("value", lambda: graphc.compile(fn)),
                       ("grad", lambda: graphc.value_and_grad(loss, argnums=argnums))):
        with reuse_at_any_size():
            reusing = make()
            first = reusing(*xs)
            want = [v.copy() for v in _leaves(make()(*others))]         # a fresh reuse
        kept = [v.copy() for v in _leaves(first)]
        _close(first, make()(*xs), f"{name} {what}: reuse changed a value", name)
        second = reusing(*others)
        _bits_equal(kept, _leaves(first), f"{name} {what}: the second call wrote a first result",
                    name)
        _bits_equal(second, want, f"{name} {what}: second call", name)


def test_limits_are_restored():
    before = [getattr(mod, name) for mod, name in _LIMITS]
    with reuse_at_any_size():
        assert all(getattr(mod, name) == 0 for mod, name in _LIMITS)
    assert [getattr(mod, name) for mod, name in _LIMITS] == before
    assert min(before) > 0


def test_reuse_is_on_in_the_generated_code():
    """The limits reach the code: a small program gets a kept buffer and an out= write."""
    def f(x, w):
        h = np.tanh(x @ w)
        return (np.exp(h) * h).sum()
    x, w = np.ones((4, 3)), np.ones((3, 5))
    with reuse_at_any_size():
        src = graphc.value_and_grad(f, argnums=(0, 1)).source(x, w)
    assert "_buffer(" in src or "out=" in src, src
    assert "_buffer(" not in graphc.value_and_grad(f, argnums=(0, 1)).source(x, w)


@quick(40)
@given(SEEDS)
def test_reuse_programs(seed):
    check(seed)


@pytest.mark.fuzz
@long()
@given(SEEDS)
def test_reuse_fuzz_long(seed):
    check(seed)


@pytest.mark.fuzz
@long()
@given(SEEDS)
def test_reuse_fuzz_long_float32(seed):
    check(seed, np.float32)


@quick(30)
@given(SEEDS)
def test_reuse_conv_and_pool(seed):
    check_conv(seed)


@pytest.mark.fuzz
@long()
@given(SEEDS)
def test_reuse_fuzz_long_conv_and_pool(seed):
    check_conv(seed)


def test_reuse_may_round_a_product_differently():
    """Seed 1844646: the window buffer is contiguous where the view was not, so matmul
    takes BLAS instead of NumPy's loop: an ulp apart, within the comparison's rounding."""
    check_conv(1844646)


def _embedding_like(x):
    """Seed 983049356's program at full size: a scatter (the gradient of ``y[[1]]``) is
    the other cotangent's out=, whose reshape the log1p gradient is written into, whose
    reshape is returned."""
    h = np.log1p(x.reshape(1, 20000, 1))
    y = h.sum(axis=0)
    return (y * _C).sum() + y[np.array([1])].sum()


_C = np.random.default_rng(0).uniform(0.5, 1.5, (20000, 1))


@pytest.mark.parametrize("target", ["numpy", "array-api"])
def test_a_returned_gradient_is_never_a_kept_buffer(target):
    """The workspace kept the scatter's buffer between calls although the out= reuse
    passed it, through a reshape, to the returned gradient: the next call overwrote a
    gradient the caller held (found by test_reuse_fuzz_long, seed 983049356)."""
    if target == "array-api":
        pytest.importorskip("array_api_compat")
    rng = np.random.default_rng(1)
    x1, x2 = rng.uniform(0, 1, (20000, 1)), rng.uniform(0, 1, (20000, 1))
    vg = graphc.value_and_grad(_embedding_like, target=target)
    _, g1 = vg(x1)
    kept = g1.copy()
    _, g2 = vg(x2)
    assert np.array_equal(g1, kept) and not np.shares_memory(g1, g2)
    want = (_C / (1 + x1)).ravel()
    want[1] += 1 / (1 + x1[1, 0])
    np.testing.assert_allclose(g1.ravel(), want, rtol=1e-12)
    check(983049356)
