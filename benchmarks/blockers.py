"""What stands in the way of issue 18's unmet goals, measured on this machine.

Three small experiments behind the "what stands in the way" lines of docs/performance.md:

1. **Transcendentals in the numba target.**  Numba compiles ``np.exp`` / ``np.log1p`` on a
   scalar to one libm call per element; NumPy's own float32 loops are SIMD.  Both are timed
   per element on 2,560 float32 values (W3's count: 256 rows x ~10 transcendentals), and
   W3's fused kernel is timed alone against the whole call.
2. **Handing work to a second Python thread.**  The round trip of an empty task to a
   worker thread (queue + semaphore, the cheapest portable hand-off), and W4's largest
   NumPy statement (conv2's window copy, 1x6x5x5x10x10x64 float32) split in two halves
   over two threads against one thread.
3. **Which BLAS** NumPy uses and with how many threads (``threadpoolctl`` when installed).

    .venv/bin/python benchmarks/blockers.py           # about 20 s; prints a Markdown report

Timings are the minimum over repeats of an inner loop (the host's noise only adds time).
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def best(fn, inner=200, repeats=15):
    """Minimum seconds per call of ``fn`` over ``repeats`` runs of ``inner`` calls."""
    for _ in range(max(3, inner // 10)):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return min(times)


def transcendentals(log=print):
    """ns per element: numba's scalar libm call against NumPy's float32 loop."""
    try:
        import numba
    except ImportError:
        log("numba is not installed: section 1 skipped")
        return {}

    @numba.njit
    def exp_sum(a, out):
        s = np.float32(0.0)
        for i in range(a.shape[0]):
            s += np.float32(np.exp(a[i]))
        out[0] = s

    @numba.njit
    def log1p_sum(a, out):
        s = np.float32(0.0)
        for i in range(a.shape[0]):
            s += np.float32(np.log1p(a[i]))
        out[0] = s

    @numba.njit
    def div_sum(a, out):          # a cheap op through the same loop: the loop's own cost
        s = np.float32(0.0)
        for i in range(a.shape[0]):
            s += np.float32(1.0) / a[i]
        out[0] = s

    a = np.random.default_rng(0).random(2560).astype(np.float32)
    one, dst = np.empty(1, np.float32), np.empty_like(a)
    for kernel, ufunc in ((exp_sum, np.exp), (log1p_sum, np.log1p)):   # same work, checked
        kernel(a, one)
        want = ufunc(a.astype(np.float64)).sum()
        if not np.isclose(one[0], want, rtol=1e-4):
            raise AssertionError(f"{ufunc.__name__}: numba's loop sums {one[0]}, not {want}")
    rows = []
    for name, kernel, ufunc in (("exp", exp_sum, np.exp), ("log1p", log1p_sum, np.log1p),
                                ("1/x", div_sum, None)):
        t_numba = best(lambda: kernel(a, one)) / a.size
        t_numpy = best(lambda: ufunc(a, out=dst)) / a.size if ufunc else None
        rows.append((name, t_numba, t_numpy))
    log("| op (float32, 2,560 values) | numba scalar loop | NumPy ufunc | numba / NumPy |")
    log("|---|---:|---:|---:|")
    for name, tn, tp in rows:
        log(f"| {name} | {tn * 1e9:.2f} ns | " + (f"{tp * 1e9:.2f} ns | {tn / tp:.1f}x |"
                                                   if tp else "— | — |"))
    return {name: (tn, tp) for name, tn, tp in rows}


def w3_kernel(log=print):
    """W3 with target="numba": the fused kernel alone against the whole call and hand NumPy."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return {}
    import graphc
    from benchmarks import workloads as W
    rng = np.random.default_rng(0)
    p, (x, y) = W.sig_params(rng), W.sig_data(rng)
    fused = graphc.value_and_grad(W.sig_loss_np, target="numba")
    ns: dict = {}
    exec(compile(fused.source(p, x, y), "<graphc W3>", "exec"), ns)
    kernels = [v for k, v in ns.items() if k.startswith("fused_")]
    if len(kernels) != 1:
        log(f"W3 has {len(kernels)} fused kernels, not one: kernel timing skipped")
        return {}
    outs = [np.empty(s, np.float32) for s in ((1,), (1,), (3, 1), (3,), (3, 3), (3,), (2, 3))]
    args = (x, p["W1"], p["b1"], p["W2"], p["b2"], p["W3"], p["b3"], y, *outs)
    t_call = best(lambda: fused(p, x, y))
    t_kernel = best(lambda: kernels[0](*args))
    t_hand = best(lambda: W.sig_value_and_grad_numpy(p, x, y))
    log(f"W3 numba: whole call {t_call * 1e6:.1f} µs, the fused kernel alone "
        f"{t_kernel * 1e6:.1f} µs, hand NumPy {t_hand * 1e6:.1f} µs "
        f"(call / hand {t_call / t_hand:.2f}x; goal 0.5x)")
    return {"call": t_call, "kernel": t_kernel, "hand": t_hand}


class _Worker:
    """One daemon thread that runs (fn, args) handed over through a queue."""

    def __init__(self):
        self.tasks, self.done = queue.SimpleQueue(), threading.Semaphore(0)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            fn, args = self.tasks.get()
            fn(*args)
            self.done.release()

    def both(self, fn, theirs, mine):
        """fn(*theirs) on the worker while this thread runs fn(*mine); wait for both."""
        self.tasks.put((fn, theirs))
        fn(*mine)
        self.done.acquire()


def threads(log=print):
    """The cost of a hand-off, and W4's largest copy on one thread and split over two."""
    x = np.random.default_rng(0).standard_normal((64, 6, 14, 14)).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(x, (5, 5), axis=(2, 3))
    src = windows[None].transpose(0, 2, 5, 6, 3, 4, 1)      # (1, 6, 5, 5, 10, 10, 64)
    dst = np.empty(src.shape, np.float32)

    def part(lo, hi):
        np.copyto(dst[:, lo:hi], src[:, lo:hi])

    worker = _Worker()
    worker.both(part, (0, 3), (3, 6))
    if not np.array_equal(dst, src):
        raise AssertionError("the copy split over two threads is not the copy")
    t_empty = best(lambda: worker.both(lambda: None, (), ()), inner=100)
    t_one = best(lambda: np.copyto(dst, src), inner=50)
    t_two = best(lambda: worker.both(part, (0, 3), (3, 6)), inner=50)
    log(f"hand-off of an empty task to a second thread and back: {t_empty * 1e6:.1f} µs")
    log(f"conv2's window copy (W4, {dst.nbytes / 1e6:.1f} MB): one thread "
        f"{t_one * 1e6:.0f} µs, two threads {t_two * 1e6:.0f} µs "
        f"({t_one / t_two:.2f}x faster)")
    return {"handoff": t_empty, "copy_one": t_one, "copy_two": t_two}


def blas(log=print):
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        log("threadpoolctl is not installed: BLAS details skipped")
        return []
    info = [(d.get("internal_api"), d.get("version"), d.get("num_threads"),
             d.get("architecture")) for d in threadpool_info()]
    for api, version, n, arch in info:
        log(f"thread pool: {api} {version}, {n} threads, {arch}")
    return info


def main():
    import os
    import platform
    log = print
    log(f"# What stands in the way (benchmarks/blockers.py), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    log(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
        f"Python {platform.python_version()}")
    log("")
    transcendentals(log)
    log("")
    w3_kernel(log)
    threads(log)
    blas(log)


if __name__ == "__main__":
    main()
