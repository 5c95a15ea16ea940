"""No state leaks: errors leave nothing behind, and the compile cache is bounded."""
import gc
import linecache
import pathlib
import sys
import tracemalloc

import numpy as np
import pytest

import graphc
from graphc.api import DEFAULT_CACHE_SIZE
from graphc.tracing import current_trace

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
import make_errors_doc as catalogue  # noqa: E402


def _fresh_trace_works():
    assert current_trace() is None
    assert sys.getprofile() is None

    def f(x):
        hidden = np.tanh(x)
        return np.sum(hidden * x)
    g = graphc.trace(f, np.ones(2))
    assert "hidden" in {g.nx.nodes[n]["name"] for n in g.nx.nodes}   # name capture works
    np.testing.assert_allclose(graphc.grad(f)(np.zeros(2)), [0.0, 0.0])
    assert current_trace() is None and sys.getprofile() is None


@pytest.mark.parametrize("case", catalogue.CASES, ids=lambda c: c.id)
def test_next_trace_works_after_each_error(case):
    catalogue.run_case(case)
    _fresh_trace_works()


def test_errors_inside_nested_transforms_leave_no_state():
    def inner(x):
        return x * float(x.sum())   # ControlFlowError, two transforms deep (cuts the gradient)

    def outer(x):
        return graphc.grad(lambda y: np.sum(graphc.compile(inner)(y)))(x).sum()
    for _ in range(3):
        with pytest.raises(graphc.ControlFlowError):
            graphc.grad(outer)(np.ones(2))
        _fresh_trace_works()


def test_failed_build_is_not_cached():
    calls = []

    def f(x, fail):
        calls.append(fail)
        if fail:
            raise RuntimeError("user bug")
        return x * 2.0
    cf = graphc.compile(f)
    with pytest.raises(RuntimeError, match="user bug"):
        cf(1.0, True)
    with pytest.raises(RuntimeError, match="user bug"):
        cf(1.0, True)                # traced again: failures are not cached
    assert cf(1.0, False) == 2.0
    assert len(calls) == 3 and len(cf._cache) == 1
    _fresh_trace_works()


def test_cache_is_an_lru_of_documented_size():
    assert DEFAULT_CACHE_SIZE == 64
    assert graphc.compile(lambda x: x).cache_size == 64
    traces = []

    def f(x):
        traces.append(x.shape)
        return np.sum(x * x)
    df = graphc.grad(f, cache_size=3)
    assert df.cache_size == 3
    for n in (1, 2, 3):
        df(np.ones(n))
    df(np.ones(1))                    # 1 is now the most recently used
    df(np.ones(4))                    # evicts 2, the least recently used
    assert len(df._cache) == 3
    df(np.ones(1))
    df(np.ones(3))
    assert len(traces) == 4           # 1 and 3 were still cached
    df(np.ones(2))                    # 2 was evicted: traced again
    assert [t[0] for t in traces] == [1, 2, 3, 4, 2]
    np.testing.assert_array_equal(df(np.ones(2)), [2.0, 2.0])
    for bad in (0, -1, 2.5, True, None):
        with pytest.raises(graphc.OptionError):
            graphc.compile(f, cache_size=bad)


def test_evicted_code_leaves_linecache():
    # Entries now also leave when their code is collected: collect earlier tests' garbage
    # first, so that it cannot go away during the count.
    gc.collect()
    before = sum(1 for k in linecache.cache if str(k).startswith("<graphc:"))
    cf = graphc.compile(lambda x: np.sum(np.exp(x)), cache_size=4)
    for n in range(1, 40):
        cf(np.ones(n))
    after = sum(1 for k in linecache.cache if str(k).startswith("<graphc:"))
    assert after - before <= 4
    cf.cache_clear()
    assert sum(1 for k in linecache.cache if str(k).startswith("<graphc:")) == before
    assert cf(np.zeros(2)) == 2.0


def test_memory_is_bounded_over_many_new_shapes():
    # 300 signatures through one compiled gradient (cache of 64): memory after
    # 150 and after 300 shapes must be about the same (the cache is full both
    # times; nothing else may grow per signature).
    def loss(w, x):
        h = np.tanh(x @ w)
        return np.mean(h * h) + 0.1 * np.sum(w ** 2)
    vg = graphc.value_and_grad(loss)

    def run(lo, hi):
        for n in range(lo, hi):
            vg(np.ones((3, 2)) * 0.1, np.ones((n, 3)))
    run(1, 80)                        # warm up: fill the cache, import lazies
    gc.collect()
    tracemalloc.start()
    try:
        run(80, 150)
        gc.collect()
        mid, _ = tracemalloc.get_traced_memory()
        run(150, 300)
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(vg._cache) == DEFAULT_CACHE_SIZE
    growth = end - mid
    # 150 more signatures; each cache entry (graph, source, code) is tens of kB,
    # so an unbounded cache grows by megabytes.  The eager-snippet caches are
    # bounded too but cleared in steps, so allow one step of sawtooth.
    assert growth < 512 * 1024, f"memory grew by {growth / 1024:.0f} KiB over 150 new shapes"
    from graphc.eager import cached_snippets
    from graphc.primitive import REGISTRY
    from graphc.user_code import cached_codes
    assert cached_snippets() <= 256 and cached_codes() <= 1024
    assert max(len(p._impl_cache) for p in REGISTRY.values()) <= 64
