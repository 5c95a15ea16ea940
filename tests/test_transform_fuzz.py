"""Random programs through graphc's transformations: vmap, jvp and jacobian.

tests/test_fuzz.py's programs (every op of its table, broadcasting, reductions, indexing,
products) checked against references that do not share graphc's rules:

* ``vmap(f, in_axes=(0, None, None))`` on a stack of three first arguments against NumPy
  running ``f`` on each one and stacking the results (batching rules, composed), and
  ``vmap(grad(loss))`` against ``grad`` row by row (the backward pass batched);
* ``jvp(loss)`` against the gradient of value_and_grad dotted with the tangents (forward
  mode against reverse mode, two sets of rules);
* ``jacobian(loss, mode="fwd")`` against ``mode="rev"``, also on tests/test_trust_fuzz.py's
  programs, which sit on kinks and ties.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given

import graphc
import test_trust_fuzz as trust
from _fuzz import LONG, SEEDS, long, quick
from test_fuzz import _as_fn, _close, draw_program


def check_vmap(seed):
    prog = draw_program(seed)
    x0, x1, x2 = prog.inputs
    rng = np.random.default_rng(seed)
    batch = np.stack([x0 + rng.uniform(-0.3, 0.3, np.shape(x0)) for _ in range(3)])
    f = _as_fn(prog, "outputs")
    with np.errstate(all="ignore"):
        got = graphc.vmap(f, in_axes=(0, None, None))(batch, x1, x2)
        rows = [prog.outputs([b, x1, x2]) for b in batch]
    for i, g in enumerate(got):
        want = np.stack([np.asarray(r[i]) for r in rows])
        assert np.shape(g) == want.shape, f"output {i}: {np.shape(g)} vs {want.shape}\n{prog}"
        g = np.asarray(g, np.float64)
        same_nonfinite = np.array_equal(np.isfinite(g), np.isfinite(want)) and np.array_equal(
            g[~np.isfinite(g)], want[~np.isfinite(want)], equal_nan=True)
        ok = np.isfinite(want)          # a perturbed row may leave a function's domain
        assert same_nonfinite and _close(g[ok], want[ok], 1e-12), \
            f"output {i}: vmap {g} vs per row {want}\n{prog}"


def check_vmap_grad(seed):
    """Per-example gradients: vmap of grad against grad row by row."""
    prog = draw_program(seed)
    x0, x1, x2 = prog.inputs
    rng = np.random.default_rng(seed)
    batch = np.stack([x0 + rng.uniform(-0.3, 0.3, np.shape(x0)) for _ in range(3)])
    grad = graphc.grad(_as_fn(prog, "loss"), argnums=(0, 1))
    with np.errstate(all="ignore"):
        got = graphc.vmap(grad, in_axes=(0, None, None))(batch, x1, x2)
        rows = [grad(b, x1, x2) for b in batch]
    for i, g in enumerate(got):
        want = np.stack([r[i] for r in rows])
        ok = np.isfinite(want)
        assert np.shape(g) == want.shape and np.array_equal(np.isfinite(g), ok), prog
        assert _close(np.asarray(g)[ok], want[ok], 1e-12), \
            f"d/dx{i}: vmap(grad) {g} vs per row {want}\n{prog}"


def check_jvp(seed):
    prog = draw_program(seed)
    xs = prog.inputs
    rng = np.random.default_rng(seed)
    ts = [rng.uniform(-1, 1, np.shape(x)) for x in xs]
    f = _as_fn(prog, "loss")
    with np.errstate(all="ignore"):
        out, tangent = graphc.jvp(f, tuple(xs), tuple(ts))
        value, grads = graphc.value_and_grad(f, argnums=(0, 1, 2))(*xs)
    want = sum(float(np.sum(g * t)) for g, t in zip(grads, ts))
    assert _close(out, value, 1e-12), f"jvp's value {out} vs {value}\n{prog}"
    scale = max(1.0, sum(float(np.sum(np.abs(g * t))) for g, t in zip(grads, ts)))
    assert abs(float(tangent) - want) <= 1e-10 * scale, \
        f"jvp's tangent {tangent} vs the gradient's {want}\n{prog}"


def check_jacobian(seed):
    prog = draw_program(seed)
    f = _as_fn(prog, "loss")
    with np.errstate(all="ignore"):
        rev = graphc.jacobian(f, argnums=(0, 1, 2), mode="rev")(*prog.inputs)
        fwd = graphc.jacobian(f, argnums=(0, 1, 2), mode="fwd")(*prog.inputs)
    for i, (r, w) in enumerate(zip(rev, fwd)):
        assert np.shape(r) == np.shape(w) == np.shape(prog.inputs[i]), prog
        assert _close(w, r, 1e-10), f"d/dx{i}: fwd {w} vs rev {r}\n{prog}"


def check_kink_jacobian(seed):
    """tests/test_trust_fuzz.py's programs (kinks, ties, signed zeros, infinities, special
    inputs): forward and reverse mode take the same side of each kink.  Programs with an
    infinite branch are left out: there ``sqrt(max(x, 0))`` at ``x < 0`` has reverse
    gradient 0 and forward tangent ``0 * inf = nan``, as in PyTorch (JAX: nan both ways)."""
    prog = trust.draw_program(seed)
    if not prog.steps or any(step[0] == "inf_branch" for step in prog.steps):
        return
    f = trust._as_fn(prog, "loss")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rev = graphc.jacobian(f, argnums=(0, 1, 2), mode="rev")(*prog.args())
        fwd = graphc.jacobian(f, argnums=(0, 1, 2), mode="fwd")(*prog.args())
    for i, (r, w) in enumerate(zip(rev, fwd)):
        assert np.shape(r) == np.shape(w), prog
        assert np.allclose(w, r, rtol=1e-9, atol=1e-9, equal_nan=True), \
            f"d/dx{i} at a kink: fwd {w} vs rev {r}\n{prog}"


@quick(15)
@given(SEEDS)
def test_kinks_fwd_like_rev(seed):
    check_kink_jacobian(seed)


@quick(25)
@given(SEEDS)
def test_vmap_programs_like_a_loop(seed):
    check_vmap(seed)


@quick(15)
@given(SEEDS)
def test_vmap_grad_programs_like_a_loop(seed):
    check_vmap_grad(seed)


@quick(25)
@given(SEEDS)
def test_jvp_programs_like_the_gradient(seed):
    check_jvp(seed)


@quick(15)
@given(SEEDS)
def test_jacobian_fwd_like_rev(seed):
    check_jacobian(seed)


@pytest.mark.fuzz
@long(LONG // 4)
@given(SEEDS)
def test_transform_fuzz_long_vmap(seed):
    check_vmap(seed)


@pytest.mark.fuzz
@long(LONG // 4)
@given(SEEDS)
def test_transform_fuzz_long_jvp(seed):
    check_jvp(seed)


@pytest.mark.fuzz
@long(LONG // 4)
@given(SEEDS)
def test_transform_fuzz_long_jacobian(seed):
    check_jacobian(seed)


@pytest.mark.fuzz
@long(LONG // 4)
@given(SEEDS)
def test_transform_fuzz_long_vmap_grad(seed):
    check_vmap_grad(seed)


@pytest.mark.fuzz
@long(LONG // 4)
@given(SEEDS)
def test_transform_fuzz_long_kinks(seed):
    check_kink_jacobian(seed)
