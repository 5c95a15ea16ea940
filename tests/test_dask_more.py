"""graphc.dask.value_and_grad with ``has_aux=True`` and keyword arguments (issue 17): on a
LocalCluster with uneven chunks, equal to the single-machine graphc.value_and_grad to 1e-10
(float64); auxiliary values the graph cannot join from chunks are refused."""
import pickle

import numpy as np
import pytest

import graphc

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import graphc.dask  # noqa: E402
from graphc.errors import SignatureError  # noqa: E402

RNG = np.random.default_rng(11)
N, D, H, K = 203, 6, 8, 4
X = RNG.normal(size=(N, D))
LABELS = RNG.integers(0, K, N)
PARAMS = [RNG.normal(size=(D, H)) * 0.5, RNG.normal(size=H) * 0.1,
          RNG.normal(size=(H, K)) * 0.5, RNG.normal(size=K) * 0.1]
ROWS = (70, 70, 50, 13)


@pytest.fixture(scope="module", autouse=True)
def no_threads_left():
    """Stop Dask's threaded-scheduler pool afterwards (as tests/test_dask.py does)."""
    yield
    import dask.threaded
    if dask.threaded.default_pool is not None:
        dask.threaded.default_pool.shutdown(wait=True)
        dask.threaded.default_pool = None


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    c = distributed.Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


def _logits(params, X):
    W1, b1, W2, b2 = params
    return np.tanh(X @ W1 + b1) @ W2 + b2


def ce_aux(params, X, y, *, reg=0.0, weights=None, reduction="mean"):
    logits = _logits(params, X)
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    per = -logp[np.arange(X.shape[0]), y]
    if weights is not None:
        per = per * weights[y]
    loss = np.mean(per) if reduction == "mean" else np.sum(per)
    if reduction == "mean":
        loss = loss + reg * np.sum(params[0] ** 2)
    aux = {"per_example": per, "logits": logits,                  # per example: joined
           "accuracy": np.mean(np.argmax(logits, axis=1) == y),   # a mean: weighted sum
           "wrong": np.sum(per > 1.0),                            # a sum: summed
           "norm": np.sum(params[0] ** 2)}                        # no batch: taken once
    return loss, aux


def _data():
    return (da.from_array(X, chunks=(ROWS, (D,))), da.from_array(LABELS, chunks=(ROWS,)))


def _close(got, want):
    if isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            _close(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            _close(a, b)
    else:
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


CALLS = {
    "defaults": {},
    "reg": {"reg": 0.01},
    "class-weights": {"weights": np.array([1.0, 2.0, 0.5, 1.5])},
    "sum": {"reduction": "sum"},
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_has_aux_and_keywords_equal_single_machine(client, name):
    kwargs = CALLS[name]
    vg = graphc.dask.value_and_grad(ce_aux, batch_argnums=(1, 2), client=client, has_aux=True)
    got = vg(PARAMS, *_data(), **kwargs)
    want = graphc.value_and_grad(ce_aux, has_aux=True)(PARAMS, X, LABELS, **kwargs)
    _close(got, want)
    (_, aux), _ = got
    assert aux["per_example"].shape == (N,) and aux["logits"].shape == (N, K)


def ce_loss(params, X, y, *, reg=0.0):
    return ce_aux(params, X, y, reg=reg)[0]


def test_keywords_without_aux_and_plan_per_keyword(client):
    loss = ce_loss
    vg = graphc.dask.value_and_grad(loss, batch_argnums=(1, 2), client=client)
    for reg in (0.0, 0.1):
        _close(vg(PARAMS, *_data(), reg=reg),
               graphc.value_and_grad(loss)(PARAMS, X, LABELS, reg=reg))
    vg2 = pickle.loads(pickle.dumps(vg))
    _close(vg2(PARAMS, *_data(), reg=0.1), graphc.value_and_grad(loss)(PARAMS, X, LABELS, reg=0.1))


def test_aux_on_the_threaded_scheduler():
    def loss(w, x):
        r = x @ w
        return np.mean(r ** 2), (r, np.sum(r))
    w = RNG.normal(size=D)
    vg = graphc.dask.value_and_grad(loss, batch_argnums=1, has_aux=True)
    with dask.config.set(scheduler="threads"):
        got = vg(w, da.from_array(X, chunks=(ROWS, (D,))))
    _close(got, graphc.value_and_grad(loss, has_aux=True)(w, X))


def test_aux_along_another_axis():
    def loss(w, x):
        r = x @ w
        return np.sum(r), {"rows_last": np.stack([r, 2 * r])}
    w = RNG.normal(size=D)
    vg = graphc.dask.value_and_grad(loss, batch_argnums=1, has_aux=True)
    with dask.config.set(scheduler="synchronous"):
        got = vg(w, da.from_array(X, chunks=(ROWS, (D,))))
    want = graphc.value_and_grad(loss, has_aux=True)(w, X)
    assert got[0][1]["rows_last"].shape == (2, N)
    _close(got, want)


def _refused(loss, match):
    vg = graphc.dask.value_and_grad(loss, batch_argnums=1, has_aux=True)
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(graphc.dask.BatchAxisError, match=match) as err:
            vg(RNG.normal(size=D), da.from_array(X, chunks=(ROWS, (D,))))
    assert "test_dask_more.py" in str(err.value)


def test_aux_mixing_examples_is_refused():
    def largest(w, x):
        r = x @ w
        return np.mean(r ** 2), np.max(r)
    _refused(largest, "keeps the examples apart|max")


def test_aux_scaled_by_the_batch_size_is_refused():
    def scaled(w, x):
        r = x @ w
        return np.mean(r ** 2), r / x.shape[0]
    _refused(scaled, "scaled by the batch size")


def test_aux_that_depends_on_the_batch_size_only_is_refused():
    def size(w, x):
        return np.mean((x @ w) ** 2), np.ones(3) * x.shape[0]
    _refused(size, "batch size")


def test_dask_array_keyword_is_refused():
    def loss(w, x, *, y):
        return np.mean((x @ w - y) ** 2)
    vg = graphc.dask.value_and_grad(loss, batch_argnums=1)
    with pytest.raises(SignatureError, match="keyword argument 'y' is a Dask array"):
        vg(RNG.normal(size=D), da.from_array(X, chunks=(ROWS, (D,))),
           y=da.from_array(LABELS * 1.0, chunks=(ROWS,)))
