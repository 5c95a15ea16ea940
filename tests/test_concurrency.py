"""Threads: compiled functions run concurrently, tracing state is per thread,
and the compile cache builds each signature once under concurrent first calls."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import graphc
from graphc.tracing import current_trace

THREADS = 8


def mlp(params, x):
    h = np.tanh(x @ params["W1"] + params["b1"])
    out = h @ params["W2"]
    return np.mean(out ** 2)


def _params(rng):
    return {"W1": rng.normal(size=(5, 7)), "b1": rng.normal(size=7),
            "W2": rng.normal(size=(7, 2))}


def test_compiled_function_called_from_many_threads():
    rng = np.random.default_rng(0)
    params = _params(rng)
    xs = [rng.normal(size=(4, 5)) for _ in range(64)]
    vg = graphc.value_and_grad(mlp)
    expected = [vg(params, x) for x in xs]          # serial reference (and the build)
    barrier = threading.Barrier(THREADS)

    def work(i):
        barrier.wait()
        return [vg(params, xs[j]) for j in range(i, len(xs), THREADS) for _ in range(5)]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    for i, res in enumerate(results):
        for k, j in enumerate(range(i, len(xs), THREADS)):
            for r in res[5 * k:5 * k + 5]:
                assert r[0] == expected[j][0]
                for key in params:
                    np.testing.assert_array_equal(r[1][key], expected[j][1][key])


def test_concurrent_first_calls_build_each_signature_once():
    traces = []
    lock = threading.Lock()

    def f(x):
        with lock:
            traces.append(x.shape)
        return np.sum(np.sin(x) * x)
    df = graphc.grad(f)
    barrier = threading.Barrier(THREADS)
    shapes = [(3,), (4,), (3,), (4,)] * (THREADS // 4)

    def work(i):
        x = np.linspace(0.0, 1.0, int(np.prod(shapes[i]))).reshape(shapes[i])
        barrier.wait()                        # everyone asks for a new signature at once
        return x, df(x)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    assert sorted(traces) == [(3,), (4,)]     # one build per signature, no duplicates
    for x, g in results:
        np.testing.assert_allclose(g, np.sin(x) + x * np.cos(x), rtol=1e-13)


def test_tracing_in_one_thread_does_not_disturb_another():
    inside = threading.Event()
    resume = threading.Event()
    seen = {}

    def slow(x):
        a = np.exp(x)
        inside.set()                          # a trace is open in this thread ...
        assert resume.wait(10)
        b = a * 2.0
        return b.sum()

    def fast(y):
        seen["trace_before"] = current_trace()
        seen["profile_before"] = sys.getprofile()
        c = np.sin(y)
        return (c * c).sum()

    with ThreadPoolExecutor(2) as pool:
        slow_graph = pool.submit(graphc.trace, slow, np.ones(3))
        assert inside.wait(10)
        # ... while another thread traces and compiles other functions
        fast_graph = pool.submit(graphc.trace, fast, np.ones(2)).result(10)
        grads = pool.submit(graphc.grad(fast), np.ones(2)).result(10)
        resume.set()
        slow_graph = slow_graph.result(10)
    # fast() saw its own trace and its own name-capture hook, not slow()'s
    assert seen["trace_before"].graph.fn_name == "fast"
    assert seen["profile_before"].__self__ is seen["trace_before"]
    names = lambda g: {g.nx.nodes[n]["name"] for n in g.nx.nodes} - {None}  # noqa: E731
    assert {"c", "y"} <= names(fast_graph) and not {"a", "b"} & names(fast_graph)
    assert {"a", "b", "x"} <= names(slow_graph) and not {"c"} & names(slow_graph)
    np.testing.assert_allclose(grads, 2 * np.sin(1.0) * np.cos(1.0) * np.ones(2))
    assert current_trace() is None and sys.getprofile() is None


def test_a_tracer_from_another_threads_trace_is_an_error():
    got = threading.Event()
    done = threading.Event()
    box = {}

    def f(x):
        box["x"] = x
        got.set()
        assert done.wait(10)
        return x.sum()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(graphc.trace, f, np.ones(2))
        assert got.wait(10)
        try:
            with pytest.raises(graphc.EscapedTracerError, match="another thread"):
                graphc.trace(lambda y: y + box["x"], np.ones(2))
        finally:
            done.set()
        fut.result(10)


def test_many_threads_tracing_different_functions():
    def make(k):
        def f(x):
            scaled = x * float(k)
            return np.sum(np.tanh(scaled))
        return f

    def work(k):
        df = graphc.grad(make(k))
        x = np.linspace(-1, 1, 5)
        src = df.source(x)
        return k, df(x), src
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(2, 26)))
    for k, g, src in results:
        x = np.linspace(-1, 1, 5)
        np.testing.assert_allclose(g, k * (1 - np.tanh(k * x) ** 2), rtol=1e-12)
        assert "scaled = " in src                  # names captured in every thread


def test_check_works_from_a_worker_thread():
    # graphc.check bounds SymPy with SIGALRM in the main thread only; elsewhere it
    # must still run (without the alarm) and give the same verdict.
    def f(w1, w2):
        return np.sin(w1 * w2) + w1 ** 2
    main = graphc.check(f, 1.5, 0.5, argnums=(0, 1))
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: graphc.check(f, 1.5, 0.5, argnums=(0, 1)), range(2)))
    assert main.ok
    for r in reports:
        assert r.ok and [row.status for row in r.rows] == [row.status for row in main.rows]


def test_recursive_call_during_a_build_does_not_deadlock():
    @graphc.compile
    def f(x):
        if x.shape[0] > 1:
            # a concrete call of the same compiled function, at another
            # signature, while this one is being built
            inner = f(np.ones(x.shape[0] - 1))
            return x * float(inner.sum())
        return x * 2.0
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(f, np.ones(3)).result(30)
    np.testing.assert_array_equal(out, np.full(3, 4.0))   # 2 -> sum 2 -> 2*2 -> sum 4
