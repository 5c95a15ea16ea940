"""Compile time, fourth round (issue 18, docs/performance.md "Compile time, fourth round").

The collector is paused for a whole build and what survives it goes straight to the
oldest generation (graphc/gc_pause.py); nodes are made positionally (``Graph.insert``);
forward scalar constants are shared like backward ones in compiled builds; the
transpose and matmul shape rules cache their result per operand avals.  The generated
code is byte-identical (golden files, tests/test_compile_speed2.py).
"""
import gc
import time
import warnings

import numpy as np
import pytest

import graphc
from graphc import gc_pause, symdims
from graphc.errors import GraphcError, ShapeError
from graphc.primitive import REGISTRY, Aval, plain_params
from test_compile_speed2 import _chain, _chain_args     # the compile benchmark's chain


def _chain_grads_numpy(x, W, n):
    """value and (d/dx, d/dW) of the chain, by a hand-written NumPy backward pass."""
    h, hs = x.astype(np.float64), []
    for _ in range(n):
        hs.append(h)
        h = np.tanh(h @ W) * 0.5 + h
    g, gW = 2 * h, np.zeros_like(W, dtype=np.float64)
    for hp in reversed(hs):
        t = np.tanh(hp @ W)
        d = g * 0.5 * (1 - t * t)
        gW += hp.T @ d
        g = g + d @ W.T
    return (h * h).sum(), g, gW


# --- the collector around a build ----------------------------------------------------
@pytest.mark.parametrize("enabled", [True, False])
def test_collector_state_restored_after_a_build(enabled):
    x, W = _chain_args()
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        val, _ = graphc.value_and_grad(_chain(3), argnums=(0, 1))(x, W)
        assert gc.isenabled() is enabled
        assert np.isclose(val, _chain_grads_numpy(x, W, 3)[0], rtol=1e-5)
    finally:
        (gc.enable if was else gc.disable)()


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_state_restored_after_an_error_in_a_build(enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(GraphcError):          # raised halfway through the backward pass
            graphc.grad(lambda x: np.sum(np.tanh(x) @ np.ones((2, 2))))(np.ones(3))
        assert gc.isenabled() is enabled
        with pytest.raises(ShapeError):
            graphc.compile(lambda a, b: a @ b)(np.ones((2, 3)), np.ones((2, 3)))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_paused_restores_the_collector_when_the_block_raises():
    was = gc.isenabled()
    gc.enable()
    try:
        with pytest.raises(RuntimeError):
            with gc_pause.paused():
                assert not gc.isenabled()
                with gc_pause.paused():           # nested: the outer pause decides
                    assert not gc.isenabled()
                assert not gc.isenabled()
                raise RuntimeError("inside a build")
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_build_survivors_go_to_the_oldest_generation():
    x, W = _chain_args()
    was = gc.isenabled()
    gc.enable()
    try:
        f = graphc.value_and_grad(_chain(4), argnums=(0, 1))
        f(x, W)
        nodes = {id(f.graph(x, W)[n]) for n in f.graph(x, W).order()}
        young = {id(o) for o in gc.get_objects(generation=0)} | \
            {id(o) for o in gc.get_objects(generation=1)}
        assert not nodes & young                   # no young collection will scan them
        assert nodes <= {id(o) for o in gc.get_objects(generation=2)}
    finally:
        if not was:
            gc.disable()


def test_objects_frozen_by_the_program_stay_frozen():
    x, W = _chain_args()
    keep = [object() for _ in range(3)], {"a": [1]}
    was = gc.isenabled()
    gc.enable()
    gc.freeze()
    try:
        assert gc.get_freeze_count() > 0
        graphc.value_and_grad(_chain(2), argnums=(0, 1))(x, W)
        assert gc.get_freeze_count() > 0          # graphc did not thaw them:
        seen = {id(o) for i in range(3) for o in gc.get_objects(generation=i)}
        assert id(keep[0]) not in seen and id(keep[1]) not in seen    # still frozen
    finally:
        gc.unfreeze()
        if not was:
            gc.disable()
    assert keep


def test_dropped_builds_do_not_pile_up():
    """The survivors of a build live in the oldest generation; a dropped compiled
    function still frees its graph at once (reference counting), so repeated
    compiles keep one graph's worth of nodes alive, not one per compile."""
    from graphc.ir import Node
    x, W = _chain_args()
    gc.collect()
    counts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(6):
            f = graphc.value_and_grad(_chain(50), argnums=(0, 1))
            f(x, W)
            del f
            counts.append(sum(type(o) is Node for o in gc.get_objects()))
    assert max(counts) < 100, counts


# --- constants, shape rules, params ----------------------------------------------------
def test_forward_scalar_constants_shared_in_compiled_builds(monkeypatch):
    from graphc import compiled
    seen = []
    real = compiled.optimize

    def spy(g):
        seen.append([g[n].value for n in g.order()
                     if g[n].op == "const" and g[n].section == "forward"])
        return real(g)

    monkeypatch.setattr(compiled, "optimize", spy)
    x, W = _chain_args()
    val, (dx, dW) = graphc.value_and_grad(_chain(6), argnums=(0, 1))(x, W)
    assert seen[0] == [0.5]                     # one node for the six `* 0.5` (was six)
    ref_val, ref_dx, ref_dW = _chain_grads_numpy(x, W, 6)
    assert np.isclose(val, ref_val, rtol=1e-5)
    assert np.allclose(dx, ref_dx, rtol=1e-4) and np.allclose(dW, ref_dW, rtol=1e-4)
    # a trace shown to the user keeps one node per use, as written
    g = graphc.trace(_chain(3), x, W)
    assert sum(g[n].op == "const" for n in g.order()) == 3


def test_constants_that_look_alike_stay_apart():
    """0.0 and -0.0, 2 and 2.0, float32 and float64 scalars are different constants."""
    def signs(x):                              # 1 / (+0) = inf, 1 / (-0) = -inf
        return np.tanh(1.0 / (x * 0.0)) - np.tanh(1.0 / (x * -0.0))

    x = np.array([1.0, 2.0, 3.0])
    with np.errstate(divide="ignore"):
        assert np.array_equal(graphc.compile(signs)(x), signs(x))   # [2, 2, 2], not 0

    def f(x):
        return np.sum(x * np.float32(2.5) + x * 2.5 + (x * 2) / 3)

    x32 = np.array([1.0, 2.0, 3.0], np.float32)
    val, dx = graphc.value_and_grad(f)(x32)
    assert val == f(x32) and val.dtype == f(x32).dtype
    assert np.allclose(dx, 2.5 + 2.5 + 2 / 3, rtol=1e-6)


def test_transpose_rule_cache_gives_what_the_rule_gives():
    rule = REGISTRY["transpose"].shape
    a = Aval((2, 3, 4), np.dtype(np.float32), False)
    first = rule(a, axes=(2, 0, 1))
    assert first == Aval((4, 2, 3), np.dtype(np.float32), False)
    assert rule(a, axes=(2, 0, 1)) is first                   # cached: the same object
    assert rule(a, axes=[1, 0, 2]) == Aval((3, 2, 4), np.dtype(np.float32), False)  # (a list)
    assert rule(Aval((2, 3, 4), np.dtype(np.float64), True), axes=(2, 0, 1)).dtype == np.float64
    with pytest.raises(ShapeError, match="do not match"):
        rule(a, axes=(0, 1))
    with pytest.raises(ShapeError, match="do not match"):
        rule(a, axes=(0, 1))                                  # an error is never cached


def test_matmul_rule_cache_gives_what_the_rule_gives():
    rule = REGISTRY["matmul"].shape
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    x, y = Aval((3, 4), f32, False), Aval((4, 5), f32, False)
    out = rule(x, y)
    assert out == Aval((3, 5), f32, False) and rule(x, y) is out
    assert rule(x, Aval((4, 5), f64, False)).dtype == f64     # the operand types are in the key
    assert rule(Aval((2, 3, 4), f32, False), y).shape == (2, 3, 5)
    assert rule(Aval((4,), f32, False), y).shape == (5,)
    for _ in range(2):                                        # errors are never cached
        with pytest.raises(ShapeError, match="inner dimensions"):
            rule(x, x)
        with pytest.raises(ShapeError, match="0-d"):
            rule(Aval((), f32, True), y)


def test_plain_params_fast_path_and_refusals():
    prim = REGISTRY["transpose"]
    p = plain_params(prim, {"axes": (1, 0), "n": 3, "none": None})
    assert p == {"axes": (1, 0), "n": 3, "none": None}
    q = plain_params(prim, {"axes": (np.int64(1), 0), "k": np.int32(2), "f": np.float32(0.5)})
    assert q == {"axes": (1, 0), "k": 2, "f": 0.5}
    assert all(type(v) is int for v in q["axes"]) and type(q["k"]) is int
    assert type(q["f"]) is float
    with pytest.raises(GraphcError, match="parameter axes"):
        plain_params(prim, {"axes": (object(),)})


def test_nbytes():
    class N:
        def __init__(self, aval):
            self.aval = aval

    a = Aval((3, 5), np.dtype(np.float32), False)
    assert symdims.nbytes(N(a)) == 60 and symdims.nbytes(N(a)) == 60
    token = symdims.CODEGEN_SIZES.set(True)
    try:
        assert symdims.nbytes(N(a)) == 0                      # probing named dimensions
    finally:
        symdims.CODEGEN_SIZES.reset(token)


# --- speed --------------------------------------------------------------------------
def _compile_cpu(n, args):
    f = graphc.value_and_grad(_chain(n), argnums=(0, 1))
    t0 = time.process_time()
    f(*args)
    t1 = time.process_time()
    f(*args)
    return (t1 - t0) - (time.process_time() - t1)


def test_compile_time_linear_and_bounded():
    """A 4x graph in under 6x the CPU time of a 1x graph (interleaved, best of three),
    and a regression bound generous enough for a loaded 2-core CI machine: the
    1,000-step chain (5,004 traced nodes, 13,007 graph nodes) took 0.45-0.55 s of CPU
    here in December 2026; 4 s fails only when something became quadratic or far slower."""
    args = _chain_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compile_cpu(20, args)
        small, large = [], []
        for _ in range(3):
            small.append(_compile_cpu(250, args))
            large.append(_compile_cpu(1000, args))
    ratio = min(large) / min(small)
    assert ratio < 6.0, f"4x the nodes took {ratio:.2f}x the CPU time ({small}, {large})"
    assert min(large) < 4.0, f"the 1,000-step chain took {min(large):.2f} s of CPU time"


# --- one W.T per W in the last backward pass (graphc/ops/linalg.py's _mT) ---------------
def _spy_graphs(monkeypatch):
    from graphc import compiled
    seen = []
    real = compiled.optimize
    monkeypatch.setattr(compiled, "optimize", lambda g: (seen.append(g.copy()), real(g))[1])
    return seen


def test_last_backward_pass_makes_one_transpose_per_weight(monkeypatch):
    seen = _spy_graphs(monkeypatch)
    x, W = _chain_args()
    val, (dx, dW) = graphc.value_and_grad(_chain(6), argnums=(0, 1))(x, W)
    g = seen[0]
    wt = [n for n in g.order() if g[n].op == "transpose" and g[n].section == "backward"]
    w_node = g[g.inputs[1]]
    sources = [g[g[n].args[0]] for n in wt]
    # one transpose of W (behind its identity) and one of each h: 7 (was 12)
    assert len(wt) == 7 and sum(s.op == "identity" and s.args == (g.inputs[1],)
                                for s in sources) == 1, (len(wt), w_node)
    ref_val, ref_dx, ref_dW = _chain_grads_numpy(x, W, 6)
    assert np.isclose(val, ref_val, rtol=1e-5)
    assert np.allclose(dx, ref_dx, rtol=1e-4) and np.allclose(dW, ref_dW, rtol=1e-4)


def _mlp2(W1, W2, x):
    return np.sum(np.tanh(np.tanh(x @ W1) @ W2) ** 2) + np.sum(np.tanh(x @ W1) @ W2)


def test_second_order_builds_do_not_share_transposes(monkeypatch):
    """A backward pass that a later one differentiates keeps one transpose per use
    (a shared one would gather the later pass's cotangents in another order)."""
    from graphc import transforms
    rng = np.random.default_rng(1)
    W1, W2, x = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(5, 3))
    states = []
    real = transforms.backward

    def spy(*a, **k):
        trace = a[0]._trace
        states.append(getattr(trace, "shared_transposes", None) is not None)
        return real(*a, **k)

    monkeypatch.setattr(transforms, "backward", spy)

    def inner(W1):
        return np.sum(graphc.grad(_mlp2)(W1, W2, x) ** 2)

    g2 = graphc.grad(inner)(W1)
    assert states == [False, True]             # the nested pass does not share; the last does
    eps, fd = 1e-6, np.zeros_like(W1)
    for i in np.ndindex(W1.shape):
        d = np.zeros_like(W1)
        d[i] = eps
        fd[i] = (inner(W1 + d) - inner(W1 - d)) / (2 * eps)
    assert np.allclose(g2, fd, rtol=1e-5, atol=1e-6)
    states.clear()
    h = graphc.hessian(lambda v: _mlp2(v.reshape(3, 4), W2, x))(W1.ravel())
    assert not any(states)                     # a Hessian's grad is differentiated again
    assert np.allclose(h, h.T, atol=1e-8)

