"""``graphc.checkpoint``'s trade made visible: ``graph.cost()`` counts the recomputed FLOPs and
the bytes kept for (or rebuilt in) the backward pass; drawings mark the recomputed nodes."""
import importlib.util
import pathlib

import numpy as np
import pytest

import graphc
from graphc.cost import cost_text

ROOT = pathlib.Path(__file__).resolve().parents[1]
W = np.random.default_rng(0).normal(size=(4, 4))


def block(x):
    return np.tanh(x @ W) * 2.0


ck = graphc.checkpoint(block)


def plain(x):
    return (block(block(x)) ** 2).sum()


def remat(x):
    return (ck(ck(x)) ** 2).sum()


X = np.ones((3, 4))
F64 = 8 * 3 * 4        # bytes of one (3, 4) float64 value


def _graphs():
    return graphc.grad(plain).graph(X), graphc.grad(remat).graph(X)


def test_recomputed_flops_are_counted_apart():
    gp, gr = _graphs()
    cp, cr = gp.cost(), gr.cost()
    assert cp.recomputed_flops == 0 and cp.recomputed_bytes == 0
    # each block: (3,4)@(4,4) matmul 2*3*4*4 = 96 FLOPs + tanh 12 (the "* 2.0" is not needed)
    assert cr.recomputed_flops == 2 * (96 + 12)
    # the forward is unchanged; the backward is the plain backward plus the recomputation
    assert cr.forward_flops == cp.forward_flops
    assert cr.backward_flops == cp.backward_flops + cr.recomputed_flops
    assert sum(cr.by_node[n] for n in gr.order() if gr[n].recompute) == cr.recomputed_flops
    assert "recomputed 216 FLOPs" in str(cr) and "recomputed" not in str(cp)


def test_recomputed_nodes_are_the_wrapped_forward_in_the_backward_pass():
    _, gr = _graphs()
    rec = [n for n in gr.order() if gr[n].recompute]
    assert sorted(gr[n].op for n in rec) == ["matmul", "matmul", "tanh", "tanh"]
    assert all(gr[n].section == "backward" for n in rec)
    assert not any(gr[n].recompute for n in gr.order() if gr[n].section != "backward")


def test_bytes_kept_against_bytes_recomputed():
    gp, gr = _graphs()
    cp, cr = gp.cost(), gr.cost()
    # without checkpoint the backward reads both tanh values and the last block's output
    assert cp.saved_bytes == 3 * F64
    # with it: only the two blocks' outputs (the second block's input and the loss's input)
    # are kept; both tanh values are rebuilt in the backward pass
    assert cr.saved_bytes == 2 * F64
    assert cr.recomputed_bytes == 2 * F64
    assert cr.saved_bytes < cp.saved_bytes


def test_cost_text_shows_the_trade():
    gp, gr = _graphs()
    text = cost_text(gr)
    assert "#   recomputed           216 FLOPs   (graphc.checkpoint; part of backward)" in text
    assert "#   kept                 192 bytes" in text and "192 bytes recomputed instead" in text
    plain_text = cost_text(gp)
    assert "recomputed" not in plain_text and "#   kept" not in plain_text


def test_gradient_unchanged_and_recompute_survives_passes_of_a_deeper_net():
    rng = np.random.default_rng(3)
    Ws = [rng.normal(size=(5, 5)) / 2 for _ in range(4)]

    def layer(h, w):
        return np.tanh(h @ w)
    cl = graphc.checkpoint(layer)

    def net(ws, x, lay):
        h = x
        for w in ws:
            h = lay(h, w)
        return np.sum(h ** 2)
    x = rng.normal(size=(2, 5))
    gp = graphc.grad(lambda ws: net(ws, x, layer))
    gr = graphc.grad(lambda ws: net(ws, x, cl))
    for a, b in zip(gr(Ws), gp(Ws)):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    cp, cr = gp.graph(Ws).cost(), gr.graph(Ws).cost()
    per_layer = 2 * 2 * 5 * 5 + 2 * 5            # matmul + tanh
    assert cr.recomputed_flops == 4 * per_layer
    assert cr.backward_flops == cp.backward_flops + cr.recomputed_flops
    # the tanh outputs are not kept: only each layer's input survives to the backward pass
    assert cr.recomputed_bytes == 4 * 2 * 5 * 8
    assert cr.saved_bytes == 4 * 2 * 5 * 8 and cp.saved_bytes == 4 * 2 * 5 * 8
    # (here the plain backward keeps the same number of bytes: tanh outputs instead of inputs;
    # checkpoint pays 200 extra FLOPs per layer and saves nothing: cost() shows it)


def _lenet():
    spec = importlib.util.spec_from_file_location("_lenet_for_ck_cost", ROOT / "examples" / "lenet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lenet_conv_blocks_checkpointed():
    from graphc import nn
    lenet = _lenet()
    rng = np.random.default_rng(0)
    p = lenet.init_params(rng)
    x, y = rng.random((4, 1, 8, 8)), np.array([0, 1, 2, 3])

    def conv_block(h, w, b):
        return nn.max_pool2d(nn.relu(nn.conv2d(h, w, b, padding=1)), 2)
    ck_block = graphc.checkpoint(conv_block)

    def loss(p, block):
        h = block(x, p["conv1"]["w"], p["conv1"]["b"])
        h = block(h, p["conv2"]["w"], p["conv2"]["b"])
        h = nn.relu(nn.flatten(h) @ p["fc1"]["w"] + p["fc1"]["b"])
        return nn.cross_entropy(h @ p["fc2"]["w"] + p["fc2"]["b"], y)
    gp = graphc.grad(lambda p: loss(p, conv_block))
    gr = graphc.grad(lambda p: loss(p, ck_block))
    want, got = gp(p), gr(p)
    for k in p:
        for n in p[k]:
            np.testing.assert_allclose(got[k][n], want[k][n], rtol=1e-12, atol=1e-15)
    cp, cr = gp.graph(p).cost(), gr.graph(p).cost()
    assert cr.recomputed_flops > 0
    assert cr.backward_flops == cp.backward_flops + cr.recomputed_flops
    assert cr.forward_flops == cp.forward_flops
    assert cr.saved_bytes < cp.saved_bytes            # the trade: fewer bytes kept ...
    assert cr.recomputed_bytes > 0                    # ... rebuilt by the extra FLOPs


def test_drawing_marks_recomputed_nodes():
    pytest.importorskip("graphviz")
    from graphc.draw import to_dot
    gp, gr = _graphs()
    src = to_dot(gr).source
    assert "recomputed (checkpoint)" in src
    marked = [line for line in src.splitlines() if "#7c3aed" in line and "legend" not in line
              and not line.lstrip().startswith("label=")]          # the legend is the graph label
    assert len(marked) == 4                      # the two matmuls and two tanhs
    plain_src = to_dot(gp).source
    assert "#7c3aed" not in plain_src and "recomputed" not in plain_src
    assert "recomputed" not in to_dot(gr, legend=False).source


def test_rules_do_not_grow_with_retracing():
    """custom.RULES holds one entry per rule and call site, not one per traced call."""
    from graphc import custom

    @graphc.custom_vjp
    def f(x):
        return np.sin(x)
    f.defvjp(lambda x: (np.sin(x), x), lambda x, ct: (ct * np.cos(x),))

    def loss(x):                  # checkpoint(...) made inside the traced function
        return np.sum(f(x) * graphc.checkpoint(np.tanh)(x))
    sizes = []
    for n in range(2, 6):
        x = np.linspace(0.1, 1, n)
        g = graphc.grad(loss)(x)
        np.testing.assert_allclose(g, np.cos(x) * np.tanh(x) + np.sin(x) / np.cosh(x) ** 2,
                                   rtol=1e-13)
        graphc.vmap(graphc.grad(loss))(np.ones((3, n)))
        sizes.append(len(custom.RULES))
    assert sizes[1:] == sizes[:-1], sizes
    assert graphc.checkpoint(np.tanh) is graphc.checkpoint(np.tanh)
    # a new rule for the same function is a new entry, and it is the one used
    f.defvjp(lambda x: (np.sin(x), x), lambda x, ct: (2 * ct * np.cos(x),))
    x = np.linspace(0.1, 1, 3)              # same call site, same signature as before
    np.testing.assert_allclose(graphc.grad(loss)(x),
                               2 * np.cos(x) * np.tanh(x) + np.sin(x) / np.cosh(x) ** 2,
                               rtol=1e-13)
    assert len(custom.RULES) == sizes[-1] + 1


# --- custom_vjp and checkpoint with pytree results -----------------------------------------
@graphc.custom_vjp
def sincos(x):
    return np.sin(x), np.cos(x)


sincos.defvjp(lambda x: (sincos(x), x),
              lambda x, ct: (ct[0] * np.cos(x) - ct[1] * np.sin(x),))


def _sincos_loss(x):
    s, c = sincos(x)
    return np.sum(3 * s + c ** 2)


def test_custom_vjp_with_a_tuple_result():
    x = np.linspace(-1, 1, 5)
    want = 3 * np.cos(x) - 2 * np.cos(x) * np.sin(x)
    np.testing.assert_allclose(graphc.grad(_sincos_loss)(x), want, rtol=1e-14)
    src = graphc.grad(_sincos_loss).source(x)
    assert src.count("np.sin(") == 1 and src.count("np.cos(") == 1
    np.testing.assert_allclose(graphc.vmap(graphc.grad(_sincos_loss))(np.stack([x, 2 * x])),
                               np.stack([want, 3 * np.cos(2 * x) - np.sin(4 * x)]), rtol=1e-13)
    assert graphc.check(_sincos_loss, x).ok
    s, c = sincos(x)                           # plain Python outside a trace
    np.testing.assert_array_equal(s, np.sin(x))


def test_a_wrong_tuple_rule_is_a_mismatch():
    @graphc.custom_vjp
    def pair(x):
        return x * x, 2 * x

    pair.defvjp(lambda x: (pair(x), x), lambda x, ct: (2 * x * ct[0] + 3 * ct[1],))  # 3: wrong
    report = graphc.check(lambda x: np.sum(pair(x)[0] + pair(x)[1]), np.array([0.5, -1.0]))
    assert not report.ok and report.rows[0].status == "mismatch"


def test_checkpoint_with_a_dict_result():
    block = graphc.checkpoint(lambda x: {"t": np.tanh(x), "e": np.exp(x)})

    def loss(x):
        d = block(x)
        return np.sum(d["t"] * d["e"])
    x = np.linspace(-1, 1, 4)
    want = np.exp(x) * (1 / np.cosh(x) ** 2 + np.tanh(x))
    np.testing.assert_allclose(graphc.grad(loss)(x), want, rtol=1e-14)
    g = graphc.grad(loss).graph(x)
    assert sorted(g[n].op for n in g.order() if g[n].recompute) == ["exp", "tanh"]
    out, dot = graphc.jvp(loss, (x,), (np.ones(4),))
    assert float(dot) == pytest.approx(want.sum(), rel=1e-13)


def test_results_of_two_dtypes_are_refused():
    @graphc.custom_vjp
    def two(x):
        return x, x.astype(np.float32)

    two.defvjp(lambda x: (two(x), x), lambda x, ct: (ct[0],))
    with pytest.raises(graphc.GraphcError, match="one dtype") as info:
        graphc.grad(lambda x: np.sum(two(x)[0]))(np.ones(2))
    assert "test_checkpoint_cost.py" in str(info.value)


def test_vmap_of_grad_keeps_the_recomputation_marked():
    f = lambda x: np.sum(ck(x) ** 2)                     # noqa: E731
    c1 = graphc.grad(f).graph(X).cost()
    c5 = graphc.vmap(graphc.grad(f)).graph(np.ones((5, 3, 4))).cost()
    assert c1.recomputed_flops == 96 + 12
    assert c5.recomputed_flops == 5 * c1.recomputed_flops
    np.testing.assert_allclose(graphc.vmap(graphc.grad(f))(np.stack([X, 2 * X])),
                               np.stack([graphc.grad(f)(X), graphc.grad(f)(2 * X)]), rtol=1e-14)


# --- grad of vmap of a custom_vjp / checkpoint: the per-example bwd, batched ---------------
def _vmapped_loss(block):
    def loss(xs, w):
        return np.sum(graphc.vmap(block, in_axes=(0, None))(xs, w) ** 2)
    return loss


def test_grad_of_vmap_of_a_checkpoint():
    rng = np.random.default_rng(5)
    xs, w = rng.normal(size=(5, 3, 4)), rng.normal(size=(4, 4))

    def layer(x, w):
        return np.tanh(x @ w)
    plain, remat = _vmapped_loss(layer), _vmapped_loss(graphc.checkpoint(layer))
    for a, b in zip(graphc.grad(remat, argnums=(0, 1))(xs, w),
                    graphc.grad(plain, argnums=(0, 1))(xs, w)):
        assert np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-13)
    cp = graphc.grad(plain, argnums=1).graph(xs, w).cost()
    cr = graphc.grad(remat, argnums=1).graph(xs, w).cost()
    assert cr.recomputed_flops == 5 * (2 * 3 * 4 * 4 + 12)
    assert cr.backward_flops == cp.backward_flops + cr.recomputed_flops
    # the shared weight's cotangent is the sum over the examples
    assert "d_w_1.sum(axis=0)" in graphc.grad(remat, argnums=1).source(xs, w)
    _, dot = graphc.jvp(lambda xs: remat(xs, w), (xs,), (np.ones_like(xs),))
    _, want = graphc.jvp(lambda xs: plain(xs, w), (xs,), (np.ones_like(xs),))
    assert float(dot) == pytest.approx(float(want), rel=1e-13)


def test_grad_of_vmap_of_a_tuple_rule_and_a_zero_cotangent():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    g = graphc.grad(lambda x: np.sum(3 * graphc.vmap(sincos)(x)[0] + graphc.vmap(sincos)(x)[1] ** 2))
    np.testing.assert_allclose(g(x), 3 * np.cos(x) - 2 * np.cos(x) * np.sin(x), rtol=1e-14)

    @graphc.custom_vjp
    def scaled(x, a):
        return a * x
    scaled.defvjp(lambda x, a: (scaled(x, a), a), lambda a, ct: (a * ct, None))   # no d/da
    ga = graphc.grad(lambda x, a: np.sum(graphc.vmap(scaled, in_axes=(0, None))(x, a)),
                     argnums=(0, 1))(x, 2.0)
    np.testing.assert_allclose(ga[0], np.full_like(x, 2.0))
    assert float(ga[1]) == 0.0


def test_grad_of_vmap_with_a_wrong_bwd_names_its_line():
    @graphc.custom_vjp
    def bad(x):
        return np.sin(x)
    bad.defvjp(lambda x: (bad(x), x), lambda x, ct: (ct, ct))      # two for one argument
    with pytest.raises(graphc.GraphcError, match="tuple of 1") as info:
        graphc.grad(lambda x: np.sum(graphc.vmap(bad)(x)))(np.ones((2, 3)))
    assert "test_checkpoint_cost.py" in str(info.value)
