"""graphc.dask.value_and_grad (issue 17, API.md section 10): data-parallel gradients on a
LocalCluster with uneven chunks equal the single-machine graphc.value_and_grad to 1e-10
(float64); losses that are not a sum or mean over examples are refused."""
import subprocess
import sys

import numpy as np
import pytest

import graphc

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import graphc.dask  # noqa: E402

RNG = np.random.default_rng(7)
N, D, H, K = 203, 6, 8, 4
X = RNG.normal(size=(N, D))
LABELS = RNG.integers(0, K, N)
T = RNG.normal(size=N)
PARAMS = [RNG.normal(size=(D, H)) * 0.5, RNG.normal(size=H) * 0.1,
          RNG.normal(size=(H, K)) * 0.5, RNG.normal(size=K) * 0.1]
UNEVEN = ((70, 70, 50, 13), (D,))


@pytest.fixture(scope="module", autouse=True)
def no_threads_left():
    """Stop Dask's threaded-scheduler pool afterwards: its non-daemon threads would make
    graphc's np.random watch (tests/test_errors.py) warn instead of raise."""
    yield
    import dask.threaded
    if dask.threaded.default_pool is not None:
        dask.threaded.default_pool.shutdown(wait=True)
        dask.threaded.default_pool = None
    import threading
    assert [t.name for t in threading.enumerate()
            if t is not threading.current_thread() and not t.daemon and t.is_alive()] == []


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    c = distributed.Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


def mlp_mean(params, X, y):
    W1, b1, W2, b2 = params
    h = np.tanh(X @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out[:, 0] - y) ** 2)


def mlp_sum(params, X, y):
    W1, b1, W2, b2 = params
    h = np.tanh(X @ W1 + b1)
    return 0.5 * np.sum((h @ W2[:, 0] + b2[0] - y) ** 2)


def softmax_ce(params, X, labels):
    W1, b1, W2, b2 = params
    logits = np.maximum(X @ W1 + b1, 0.0) @ W2 + b2
    return graphc.nn.cross_entropy(logits, labels) + 1e-3 * np.sum(W1 ** 2)


def dict_loss(p, X, y):
    return np.mean(np.log1p(np.exp(-(X @ p["w"] + p["b"]) * y)))


def batch_norm(params, X, y):
    W1 = params[0]
    Z = (X - X.mean(0)) / X.std(0)
    return np.mean(np.tanh(Z @ W1)[:, 0] - y)


def _close(got, want):
    if isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    elif isinstance(want, dict):
        assert set(got) == set(want)
        for k in want:
            _close(got[k], want[k])
    else:
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _single(fn, *args, argnums=0):
    return graphc.value_and_grad(fn, argnums=argnums)(*args)


@pytest.mark.parametrize("fn, target", [(mlp_mean, T), (mlp_sum, T), (softmax_ce, LABELS)],
                         ids=["mean", "sum", "softmax-ce"])
def test_equals_single_machine_on_local_cluster(client, fn, target):
    vg = graphc.dask.value_and_grad(fn, batch_argnums=(1, 2), client=client)
    value, grads = vg(PARAMS, da.from_array(X, chunks=UNEVEN), da.from_array(target, chunks=55))
    want_value, want_grads = _single(fn, PARAMS, X, target)
    assert isinstance(value, (float, np.floating)) and all(isinstance(g, np.ndarray) for g in grads)
    _close(value, want_value)
    _close(grads, want_grads)


def lenet(p, X, y):
    h = graphc.nn.relu(graphc.nn.conv2d(X, p["k"]) + p["c"][:, None, None])
    h = graphc.nn.max_pool2d(h, 2).reshape(X.shape[0], -1)
    return graphc.nn.cross_entropy(h @ p["W"], y)


def test_convolutional_network(client):
    p = {"k": RNG.normal(size=(4, 1, 3, 3)), "c": RNG.normal(size=4), "W": RNG.normal(size=(36, K))}
    images = RNG.normal(size=(N, 1, 8, 8))
    vg = graphc.dask.value_and_grad(lenet, batch_argnums=(1, 2), client=client)
    got = vg(p, da.from_array(images, chunks=(UNEVEN[0], 1, 8, 8)), da.from_array(LABELS, chunks=70))
    _close(got, _single(lenet, p, images, LABELS))


def test_default_client_and_plan_reuse(client):
    vg = graphc.dask.value_and_grad(mlp_mean, batch_argnums=(1, 2))
    with distributed.Client(client.cluster) as default:   # the current default client
        assert distributed.default_client() is default
        xs, ys = da.from_array(X, chunks=UNEVEN), da.from_array(T, chunks=UNEVEN[0])
        first = vg(PARAMS, xs, ys)
        params2 = [p * 0.9 for p in PARAMS]
        second = vg(params2, xs, ys)
    assert len(vg._plans) == 1        # one plan (proof + modules) for one chunking
    _close(first, _single(mlp_mean, PARAMS, X, T))
    _close(second, _single(mlp_mean, params2, X, T))


def test_threaded_scheduler_without_a_client():
    vg = graphc.dask.value_and_grad(dict_loss, batch_argnums=(1, 2))
    p = {"w": RNG.normal(size=D), "b": np.float64(0.3)}
    y = np.sign(RNG.normal(size=N))
    got = vg(p, da.from_array(X, chunks=((100, 103), (D,))), da.from_array(y, chunks=100))
    _close(got, _single(dict_loss, p, X, y))


def test_argnums_tuple_and_single_row_chunks():
    """A 1-row chunk is merged into its neighbour; argnums as for graphc.value_and_grad."""
    def loss(w, b, X, y):
        return np.mean((X @ w + b - y) ** 2)
    w, b = RNG.normal(size=D), 0.5
    vg = graphc.dask.value_and_grad(loss, argnums=(0, 1), batch_argnums=(2, 3))
    got = vg(w, b, da.from_array(X, chunks=((1, 100, 1, 100, 1), (D,))),
             da.from_array(T, chunks=N))
    _close(got, _single(loss, w, b, X, T, argnums=(0, 1)))


def test_float32_chunks_keep_their_dtype():
    X32, T32 = X.astype(np.float32), T.astype(np.float32)
    P32 = [p.astype(np.float32) for p in PARAMS]
    vg = graphc.dask.value_and_grad(mlp_mean, batch_argnums=(1, 2))
    value, grads = vg(P32, da.from_array(X32, chunks=UNEVEN), da.from_array(T32, chunks=70))
    want_value, want_grads = _single(mlp_mean, P32, X32, T32)
    assert all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    for g, w in zip(grads, want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


def test_batch_statistics_are_refused(client):
    vg = graphc.dask.value_and_grad(batch_norm, batch_argnums=(1, 2), client=client)
    with pytest.raises(graphc.batch_axis.BatchAxisError) as info:
        vg(PARAMS, da.from_array(X, chunks=UNEVEN), da.from_array(T, chunks=70))
    assert "batch statistic" in str(info.value)
    assert info.value.where == f"{__file__}:{batch_norm.__code__.co_firstlineno + 2}"


def test_bad_arguments_are_refused():
    vg = graphc.dask.value_and_grad(mlp_mean, batch_argnums=(1, 2))
    with pytest.raises(graphc.SignatureError, match="must be a Dask array"):
        vg(PARAMS, X, da.from_array(T, chunks=70))
    with pytest.raises(graphc.SignatureError, match="rows"):
        vg(PARAMS, da.from_array(X, chunks=UNEVEN), da.from_array(T[:-1], chunks=70))
    with pytest.raises(graphc.OptionError, match="both"):
        graphc.dask.value_and_grad(mlp_mean, argnums=1, batch_argnums=(1, 2))(
            PARAMS, da.from_array(X, chunks=UNEVEN), da.from_array(T, chunks=70))
    with pytest.raises(graphc.OptionError, match="batch_argnums"):
        graphc.dask.value_and_grad(mlp_mean, batch_argnums=[1.5])


def test_import_graphc_does_not_import_dask():
    code = ("import sys, graphc; assert 'dask' not in sys.modules; "
            "assert callable(graphc.dask.value_and_grad); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_training_example_runs_against_a_scheduler_address(client, monkeypatch):
    """examples/dask_train.py with --scheduler ADDRESS (here the test cluster's)."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "dask_train.py"
    spec = importlib.util.spec_from_file_location("_dask_train_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    losses, acc = example.main(scheduler=client.scheduler.address, steps=4, synthetic=True)
    assert len(losses) == 4 and losses[-1] < losses[0] and 0.0 <= acc <= 1.0
    assert client.status == "running"        # the example closed only its own client


def test_the_dask_callable_pickles():
    import pickle
    vg = graphc.dask.value_and_grad(mlp_sum, batch_argnums=(1, 2))
    xs, ys = da.from_array(X, chunks=UNEVEN), da.from_array(T, chunks=70)
    first = vg(PARAMS, xs, ys)
    again = pickle.loads(pickle.dumps(vg))
    assert again._plans == {}
    _close(again(PARAMS, xs, ys), first)
