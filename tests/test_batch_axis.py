"""graphc.batch_axis: the proof that a loss is a sum or mean of per-example terms, which
graphc.dask.value_and_grad needs to split a batch over workers (issue 17).  Accepted
losses get the chunk weights (rows / N for a mean, 1 for a sum), checked against the
single-machine value; refused ones name the user's line and say why."""
import numpy as np
import pytest

import graphc
from graphc.batch_axis import BatchAxisError, prove
from graphc.batch_chunks import prove_split

RNG = np.random.default_rng(0)
N = 10
ROWS = [4, 4, 2]
X = RNG.normal(size=(N, 4))
Y = RNG.normal(size=N)
LABELS = RNG.integers(0, 3, N)
W = RNG.normal(size=(4, 3))
P = [RNG.normal(size=(4, 5)), RNG.normal(size=5), RNG.normal(size=(5, 3)), RNG.normal(size=3)]


def mlp_ce(params, X, y):
    W1, b1, W2, b2 = params
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(X.shape[0]), y])


def nn_ce(W, X, y):
    return graphc.nn.cross_entropy(X @ W, y)


def sum_sq(W, X, y):
    return np.sum((X @ W[:, 0] - y) ** 2)


def mean_plus_reg(W, X, y):
    return np.mean((X @ W[:, 0] - y) ** 2) + 0.1 * np.sum(W ** 2)


def mean_over_all(W, X, y):
    return np.mean(np.tanh(X @ W) ** 2) * 3.0 - 1.0


def sum_over_n(W, X, y):
    return 0.5 * np.sum((X @ W[:, 0] - y) ** 2) / X.shape[0]


def transposed(W, X, y):
    return np.mean((W.T @ X.T)[0] * y)


def embedding(E, X, y):
    return np.mean(np.sum(E[y] * X[:, :3], axis=1))


def picked(W, X, y):
    z = X @ W
    idx = np.argmax(z, axis=1)[:, None]
    return np.sum(np.take_along_axis(z, idx, axis=1))


def where_loss(W, X, y):
    r = X @ W[:, 0] - y
    return np.mean(np.where(np.abs(r) < 1.0, 0.5 * r ** 2, np.abs(r) - 0.5))


@pytest.mark.parametrize("fn, args, batch, mean", [
    (mlp_ce, (P, X, LABELS), (1, 2), True),
    (nn_ce, (W, X, LABELS), (1, 2), True),
    (sum_sq, (W, X, Y), (1, 2), False),
    (mean_plus_reg, (W, X, Y), (1, 2), True),
    (mean_over_all, (W, X, Y), (1,), True),
    (sum_over_n, (W, X, Y), (1, 2), True),
    (transposed, (W, X, Y), (1, 2), True),
    (embedding, (RNG.normal(size=(3, 3)), X, LABELS), (1, 2), True),
    (picked, (W, X, Y), (1,), False),
    (where_loss, (W, X, Y), (1, 2), True),
])
def test_accepted_losses_split_exactly(fn, args, batch, mean):
    weights = prove_split(fn, args, batch, ROWS)
    assert weights == pytest.approx({4: 0.4, 2: 0.2} if mean else {4: 1.0, 2: 1.0}, rel=1e-14)
    # the weighted chunk values and gradients are the whole batch's
    vg = graphc.value_and_grad(fn)
    value, grad = vg(*args)
    got_v, got_g, start = 0.0, None, 0
    for r in ROWS:
        part = [a[start:start + r] if i in batch else a for i, a in enumerate(args)]
        v, g = vg(*part)
        got_v += weights[r] * v
        g = [weights[r] * x for x in (g if isinstance(g, list) else [g])]
        got_g = g if got_g is None else [a + b for a, b in zip(got_g, g)]
        start += r
    np.testing.assert_allclose(got_v, value, rtol=1e-12)
    for a, b in zip(got_g, grad if isinstance(grad, list) else [grad]):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def batch_norm(W, X, y):
    Z = (X - X.mean(0)) / X.std(0)
    return np.mean((Z @ W[:, 0] - y) ** 2)


def centered(W, X, y):
    r = X @ W[:, 0] - y
    return np.mean((r - r.mean()) ** 2)


def sorted_loss(W, X, y):
    return np.sum(np.sort(X @ W[:, 0])[:3])


def flattened(W, X, y):
    return np.sum(X.reshape(-1)[:5] * W[0, 0])


def paired_rows(W, X, y):
    return np.sum(X.reshape(X.shape[0] // 2, -1) @ np.ones(8) * W[0, 0])


def pairwise(W, X, y):
    d = X[:, None, :] - X[None, :, :]
    return np.sum(d ** 2) * W[0, 0]


def sum_plus_reg(W, X, y):
    return np.sum((X @ W[:, 0] - y) ** 2) + 0.1 * np.sum(W ** 2)


def scaled_then_exp(W, X, y):
    return np.sum(np.exp((X @ W[:, 0]) / X.shape[0]))


def max_over_examples(W, X, y):
    return np.max(X @ W[:, 0])


def sum_and_mean(W, X, y):
    r = X @ W[:, 0] - y
    return np.sum(r ** 2) + np.mean(r)


def squared_mean(W, X, y):
    return np.mean(X @ W[:, 0] - y) ** 2


def branches_on_size(W, X, y):
    if X.shape[0] > 5:
        return np.mean((X @ W[:, 0]) ** 2)
    return np.mean(np.abs(X @ W[:, 0]))


def no_batch(W, X, y):
    return np.sum(W ** 2)


def first_example(W, X, y):
    return np.sum((X[0] @ W) ** 2)


def dropout(W, X, y):
    return np.mean(graphc.nn.dropout(X @ W, 0.5, key=3) ** 2)


def contracts_examples(W, X, y):
    return np.sum(X.T @ X * W[0, 0])


def weighted_by_index(W, X, y):
    return np.sum((X @ W[:, 0]) * np.arange(X.shape[0]))


def control_flow(W, X, y):
    if np.sum(X) > 0:
        return np.mean((X @ W[:, 0]) ** 2)
    return np.mean(X @ W[:, 0])


@pytest.mark.parametrize("fn, batch, why", [
    (batch_norm, (1, 2), "batch statistic"),
    (centered, (1, 2), "batch statistic"),
    (sorted_loss, (1, 2), "argsort"),
    (flattened, (1, 2), "indexes the example axis"),
    (paired_rows, (1,), "merges or splits the example axis"),
    (pairwise, (1,), "example axes differ"),
    (sum_plus_reg, (1, 2), "each chunk would add it once"),
    (scaled_then_exp, (1,), "scaled by a constant that depends on the batch size"),
    (max_over_examples, (1,), "max over the examples"),
    (sum_and_mean, (1, 2), "combines sums and means"),
    (squared_mean, (1, 2), "not linear"),
    (branches_on_size, (1,), "different for a chunk"),
    (no_batch, (1,), "does not depend on the batch"),
    (first_example, (1,), "indexes the example axis"),
    (dropout, (1,), "depends on the batch size"),
    (contracts_examples, (1,), "sums over the example axis"),
    (weighted_by_index, (1,), "batch size"),
])
def test_refused_losses_name_the_line_and_why(fn, batch, why):
    with pytest.raises(BatchAxisError) as info:
        prove_split(fn, (W, X, Y), batch, ROWS)
    err = info.value
    assert isinstance(err, graphc.GraphcError)
    assert why in str(err)
    assert err.where and err.where.startswith(__file__) and err.hint


def test_control_flow_on_batch_values_is_refused():
    with pytest.raises(graphc.GraphcError, match="control flow"):
        prove_split(control_flow, (W, X, Y), (1,), ROWS)


def test_refusal_points_at_the_mixing_line():
    with pytest.raises(BatchAxisError) as info:
        prove_split(batch_norm, (W, X, Y), (1, 2), ROWS)
    line = batch_norm.__code__.co_firstlineno + 1
    assert info.value.where == f"{__file__}:{line}"


def lenet(p, X, y):
    h = graphc.nn.relu(graphc.nn.conv2d(X, p["k"]) + p["c"][:, None, None])
    h = graphc.nn.max_pool2d(h, 2)
    h = h.reshape(h.shape[0], -1)
    return graphc.nn.cross_entropy(h @ p["W"], y)


def test_convolutions_keep_the_examples_apart():
    """conv2d's layout merges the examples with other axes and splits them again: the
    proof follows the example index through the reshapes."""
    p = {"k": RNG.normal(size=(4, 1, 3, 3)), "c": RNG.normal(size=4),
         "W": RNG.normal(size=(36, 3))}
    images = RNG.normal(size=(N, 1, 8, 8))
    assert prove_split(lenet, (p, images, LABELS), (1, 2), ROWS) == pytest.approx({4: 0.4, 2: 0.2})
    with pytest.raises(BatchAxisError, match="slides its windows over the example axis"):
        prove_split(lambda p, X, y: np.sum(graphc.nn.conv2d(X.T[None, None], p["k"][:, :, :1, :2])),
                    (p, X, LABELS), (1, 2), ROWS)


def test_proof_terms_are_the_constant_factors():
    g = graphc.trace(mlp_ce, P, X, LABELS)
    ins = {nid for nid, path in zip(g.inputs, g.signature.leaf_paths) if path[0] in (1, 2)}
    proof = prove(g, ins)
    assert proof.terms == pytest.approx((-1 / N,)) and not proof.offset
    g = graphc.trace(mean_plus_reg, W, X, Y)
    ins = {nid for nid, path in zip(g.inputs, g.signature.leaf_paths) if path[0] in (1, 2)}
    proof = prove(g, ins)
    assert proof.terms == pytest.approx((1 / N,)) and proof.offset


def test_one_chunk_needs_no_size_comparison():
    assert prove_split(sum_over_n, (W, X, Y), (1, 2), [N]) == {N: 1.0}


def count_from_shape(W, X, y):
    n = np.sum(np.broadcast_to(1.0, (X.shape[0],)))      # the batch size, computed
    return np.sum((X @ W[:, 0]) ** 2 * n)


def scaled_then_padded(W, X, y):
    z = np.concatenate([(X @ W) / X.shape[0], np.ones((X.shape[0], 1))], axis=1)
    return np.sum(z)


def test_any_constant_factor_from_the_batch_size_gets_its_weight():
    """N * sum(l): each chunk computes r * sum(l_chunk); weight N / r makes it exact."""
    assert prove_split(count_from_shape, (W, X, Y), (1,), ROWS) == pytest.approx({4: 2.5, 2: 5.0})


def test_a_scaled_value_padded_with_constants_is_refused():
    with pytest.raises(BatchAxisError, match="batch.size"):
        prove_split(scaled_then_padded, (W, X, Y), (1,), ROWS)
