"""benchmarks/run.py's measure_group: no library is timed while another's workers still spin.

On a 2-core machine NumPy's OpenBLAS workers spin for about 0.1 s after a threaded GEMM and
torch's OpenMP workers spin too; timing torch right after NumPy measured it 2-3x slower
than in steady state (docs/performance.md, "Timing across thread pools").  The harness
groups the callables by the threads they use and sleeps where the group changes.
"""
from benchmarks import run


def test_pool_of_names_the_threads_each_implementation_uses():
    assert [run.pool_of(n) for n in ("graphc", "graphc (nn)", "numpy", "autograd", "math",
                                     "numpy (tuned)", "fwd:graphc")] == ["numpy"] * 7
    assert [run.pool_of(n) for n in ("torch", "fwd:torch", "jax", "fwd:jax")] == \
        ["torch", "torch", "jax", "jax"]


def test_measure_group_settles_only_where_the_pool_changes(monkeypatch):
    events = []
    monkeypatch.setattr(run.time, "sleep", lambda s: events.append(("sleep", s)))

    def fn(name):
        return lambda: events.append(name)

    names = ["graphc", "torch", "numpy", "jax", "autograd"]
    res = run.measure_group({n: fn(n) for n in names}, target=0.0, repeats=2, slow=("autograd",))
    assert list(res) == names                          # the report keeps the caller's order
    sleep = ("sleep", run.SETTLE_S)
    timed = events[events.index(sleep):]               # calibration never sleeps
    # grouped numpy, torch, jax; where the pool changes a sleep and one untimed call (none
    # for the slow autograd); the second repeat starts with a sleep again (jax -> numpy)
    one = [sleep, "graphc", "graphc", "numpy", "autograd", sleep, "torch", "torch", sleep,
           "jax", "jax"]
    assert timed == one + one
    assert all(t.per_call >= 0 and t.repeats == 2 for t in res.values())
