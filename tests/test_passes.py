"""Each optimization pass on its own: what it removes, and that values do not change."""
import numpy as np
import pytest

import graphc
from graphc import nn
from graphc.passes import cse, dce, drop_aliases, simplify

RNG = np.random.default_rng(0)


def _ops(graph):
    return [graph.nx.nodes[n]["op"] for n in graph.order()]


def _traced(fn, *args):
    g = graphc.trace(fn, *args)
    g.check()
    return g


def _optimized(fn, *args):
    """The compiled graph, its source, and a check that the result equals plain NumPy."""
    c = graphc.compile(fn)
    got, want = c(*args), fn(*args)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.shape(got) == np.shape(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    g = c.graph(*args)
    g.check()
    return g, c.source(*args)


# --- dce / cse / drop_aliases ---------------------------------------------------
def test_dce_drops_unused_values_and_keeps_inputs():
    def f(x, unused):
        np.exp(x)                       # computed, never used
        return np.sin(x)
    g = _traced(f, np.ones(3), np.ones(2))
    assert "exp" in _ops(g)
    dce(g)
    g.check()
    assert "exp" not in _ops(g)
    assert len(g.inputs) == 2 and all(i in g.nx for i in g.inputs)


def test_dce_keeps_exactly_the_ancestors_of_outputs():
    # Many outputs sharing one long chain (dce walks once for all of them).
    import networkx as nx

    def f(x):
        np.cos(x)                       # dead
        for _ in range(50):
            x = np.sin(x)
        return [x * k for k in range(2, 40)]
    g = _traced(f, 1.0)
    want = set(g.inputs) | set(g.outputs)
    for o in g.outputs:
        want |= nx.ancestors(g.nx, o)
    dce(g)
    assert set(g.nx.nodes) == want and "cos" not in _ops(g)


def test_cse_merges_duplicates():
    g = _traced(lambda x: np.sin(x) + np.sin(x), np.ones(3))
    assert _ops(g).count("sin") == 2
    cse(g)
    dce(g)
    g.check()
    assert _ops(g).count("sin") == 1


def test_drop_aliases_removes_identity():
    g = _traced(lambda x: graphc.grad(lambda y: np.sum(x * y))(x), np.ones(3))
    assert "identity" in _ops(g)
    drop_aliases(g)
    g.check()
    assert "identity" not in _ops(g)


# --- simplify: one test per rule ------------------------------------------------
def test_reshape_to_same_shape_disappears():
    g, src = _optimized(lambda x: np.exp(x.reshape(2, 3)), RNG.normal(size=(2, 3)))
    assert "reshape" not in _ops(g) and "reshape" not in src


def test_reshape_chain_is_one_reshape():
    g, src = _optimized(lambda x: np.exp(x.reshape(6, 2).reshape(3, 4)), RNG.normal(size=(2, 6)))
    assert _ops(g).count("reshape") == 1
    assert "x.reshape(3, 4)" in src


def test_reshape_round_trip_disappears():
    g, _ = _optimized(lambda x: np.exp(x.reshape(12).reshape(3, 4)), RNG.normal(size=(3, 4)))
    assert "reshape" not in _ops(g)


def test_transpose_pair_composes():
    x = RNG.normal(size=(2, 3, 4))
    g, _ = _optimized(lambda x: np.exp(x.transpose(1, 2, 0).transpose(2, 0, 1)), x)
    assert "transpose" not in _ops(g)          # the two undo each other
    g, src = _optimized(lambda x: np.exp(x.transpose(1, 2, 0).transpose(1, 0, 2)), x)
    assert _ops(g).count("transpose") == 1
    assert "x.T" in src                        # (1, 2, 0) then (1, 0, 2) is a reversal


def test_sum_keepdims_then_reshape_is_plain_sum():
    def f(x):
        return np.exp(x.sum(axis=1, keepdims=True).reshape(3))
    g, src = _optimized(f, RNG.normal(size=(3, 4)))
    assert "reshape" not in _ops(g)
    assert "keepdims" not in src


def test_broadcast_operand_is_left_to_numpy():
    def f(x, b):
        return x * np.broadcast_to(b, (3, 4))
    g, src = _optimized(f, RNG.normal(size=(3, 4)), RNG.normal(size=(4,)))
    assert "broadcast_to" not in _ops(g) and "broadcast_to" not in src


def test_broadcast_kept_when_it_sets_the_shape():
    def f(b):
        return np.broadcast_to(b, (3, 4)) * 2.0
    g, _ = _optimized(f, RNG.normal(size=(4,)))
    assert "broadcast_to" in _ops(g)


def test_uniform_constant_becomes_scalar_in_gradient():
    # The gradient of mean() is a uniform array 1/n; it multiplies a full-size value.
    def loss(x):
        return np.mean(np.exp(x))
    x = RNG.normal(size=(5,)).astype(np.float32)
    vg = graphc.value_and_grad(loss)
    src = vg.source(x)
    assert "np.full" not in src
    v, g = vg(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.exp(x) / 5, rtol=1e-6)


def test_uniform_constant_keeps_result_dtype():
    # A float64 constant meeting a float32 array must not become a weak scalar.
    c = np.full(4, 0.5)
    def f(x):
        return x * c
    x = RNG.normal(size=(4,)).astype(np.float32)
    got = graphc.compile(f)(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, x * c)


def test_unique_fancy_index_scatter_assigns():
    def loss(z, y):
        return -z[np.arange(4), y].sum()
    z = RNG.normal(size=(4, 3))
    y = np.array([2, 0, 2, 1])
    vg = graphc.value_and_grad(loss)
    src = vg.source(z, y)
    assert "np.add.at" not in src
    want = np.zeros_like(z)
    want[np.arange(4), y] = -1
    np.testing.assert_array_equal(vg(z, y)[1], want)


def test_repeated_fancy_index_keeps_add_at():
    idx = np.array([0, 1, 1, 0])                # repeats: must accumulate
    def loss(z):
        return z[idx].sum()
    z = RNG.normal(size=(3,))
    vg = graphc.value_and_grad(loss)
    assert "np.add.at" in vg.source(z)
    np.testing.assert_array_equal(vg(z)[1], [2.0, 2.0, 0.0])


def test_unit_axis_index_is_reshape():
    def loss(s, y):
        return nn.logistic_loss(s[:, 0], y)
    s = RNG.normal(size=(6, 1))
    y = np.sign(RNG.normal(size=6))
    vg = graphc.value_and_grad(loss)
    src = vg.source(s, y)
    code = [line.split("#")[0] for line in src.splitlines()]
    assert not any("np.zeros" in line or "[:, 0]" in line for line in code)
    v, g = vg(s, y)
    want = -y / (1 + np.exp(y * s[:, 0])) / 6
    np.testing.assert_allclose(g[:, 0], want, rtol=1e-12)


def test_index_on_longer_axis_is_not_reshape():
    g, _ = _optimized(lambda x: np.exp(x[:, 1]), RNG.normal(size=(3, 2)))
    assert "getitem" in _ops(g)


def test_simplify_is_idempotent():
    def f(x):
        return np.exp(x.reshape(6, 2).reshape(3, 4).T.T).sum(axis=0, keepdims=True).reshape(4)
    g = _traced(f, RNG.normal(size=(12,)))
    simplify(g)
    dce(g)
    n = _ops(g)
    simplify(g)
    dce(g)
    g.check()
    assert _ops(g) == n


@pytest.mark.parametrize("fn", [
    lambda x: (x.reshape(2, 6).T.reshape(12) * np.ones(12)).sum(),
    lambda x: np.maximum(x, 0).reshape(3, 4).sum(axis=1, keepdims=True).reshape(3).sum(),
    lambda x: (np.broadcast_to(x[:1], (12,)) * x).sum(),
])
def test_gradients_unchanged_by_simplify(fn):
    x = RNG.normal(size=(12,))
    g = graphc.grad(fn)(x)
    eps = 1e-6
    fd = np.array([(fn(x + eps * e) - fn(x - eps * e)) / (2 * eps) for e in np.eye(12)])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
