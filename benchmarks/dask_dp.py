"""Data parallel on Dask: the MLP gradient (784-256-128-10, ReLU, mean cross-entropy,
float32) at batch 65,536 on 2 Dask workers against one process.

    python benchmarks/dask_dp.py                 # median of 7 repeats each
    python benchmarks/dask_dp.py --batch 8192 --repeats 5 --chunks 4

One process: ``graphc.value_and_grad(loss)`` on the whole batch (NumPy, BLAS with its
default threads).  Dask: ``graphc.dask.value_and_grad(loss, batch_argnums=(1, 2))`` on a
``LocalCluster(n_workers=2, threads_per_worker=1)`` (worker processes; Dask's nanny sets
their BLAS to one thread), the batch persisted on the workers in ``--chunks`` chunks (the
last one shorter), the parameters sent each call.  Both results are checked against each
other before anything is timed; the two are timed alternately.  The load average is printed: on a shared machine,
compare the ratios of one run, not absolute times across runs.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import graphc  # noqa: E402

F32 = np.float32


def params_and_data(n, seed=0):
    rng = np.random.default_rng(seed)

    def glorot(shape):
        lim = np.sqrt(6.0 / sum(shape))
        return rng.uniform(-lim, lim, shape).astype(F32)
    p = {"W1": glorot((784, 256)), "b1": np.full(256, 0.01, F32),
         "W2": glorot((256, 128)), "b2": np.full(128, 0.01, F32),
         "W3": glorot((128, 10)), "b3": np.zeros(10, F32)}
    return p, rng.random((n, 784), dtype=F32), rng.integers(0, 10, n)


def loss(p, x, y):
    h1 = np.maximum(0, x @ p["W1"] + p["b1"])
    h2 = np.maximum(0, h1 @ p["W2"] + p["b2"])
    return graphc.nn.cross_entropy(h2 @ p["W3"] + p["b3"], y)


def _interleaved(fns, repeats):
    """Times of each of ``fns``, alternating them (and their order) so that a load that
    comes and goes on a shared machine hits both alike."""
    for fn in fns:
        fn()                               # warm-up: compile, send the modules
    out = [[] for _ in fns]
    for i in range(repeats):
        order = range(len(fns)) if i % 2 == 0 else reversed(range(len(fns)))
        for j in order:
            start = time.perf_counter()
            fns[j]()
            out[j].append(time.perf_counter() - start)
    return out


def run(batch=65536, chunks=2, repeats=7, workers=2):
    warnings.filterwarnings("ignore", message=".*large graph.*")   # the data, persisted once
    import dask.array as da
    from distributed import Client, LocalCluster
    p, x, y = params_and_data(batch)
    one = graphc.value_and_grad(loss)
    rows = -(-batch // chunks)
    if chunks > 1 and rows * (chunks - 1) >= batch:
        rows = batch // chunks
    # the last chunk shorter (uneven), as real data rarely divides evenly
    sizes = [rows + 64] * (chunks - 1) + [batch - (rows + 64) * (chunks - 1)]
    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        xd = client.persist(da.from_array(x, chunks=(tuple(sizes), (784,))))
        yd = client.persist(da.from_array(y, chunks=(tuple(sizes),)))
        dist = graphc.dask.value_and_grad(loss, batch_argnums=(1, 2), client=client)
        v1, g1 = one(p, x, y)
        v2, g2 = dist(p, xd, yd)
        err = max([abs(float(v1) - float(v2)) / abs(float(v1))]
                  + [float(np.max(np.abs(g1[k] - g2[k])) / np.max(np.abs(g1[k]))) for k in g1])
        assert err < 1e-4, f"distributed result differs from one process: {err:.2e}"
        load_before = os.getloadavg()[0]
        t_one, t_dist = _interleaved([lambda: one(p, x, y), lambda: dist(p, xd, yd)], repeats)
        load_after = os.getloadavg()[0]
    return {"batch": batch, "chunks": sizes, "workers": workers, "rel_err": err,
            "one_s": t_one, "dask_s": t_dist, "load": (load_before, load_after),
            "cpus": os.cpu_count()}


def report(r):
    one, dist = statistics.median(r["one_s"]), statistics.median(r["dask_s"])
    lines = [f"MLP 784-256-128-10 gradient, batch {r['batch']:,}, float32; "
             f"{r['workers']} workers x 1 thread, chunks {r['chunks']}; {r['cpus']} CPUs, "
             f"load average {r['load'][0]:.1f} -> {r['load'][1]:.1f}",
             f"relative difference from one process: {r['rel_err']:.1e}",
             "| | median | min | max |", "|---|---|---|---|",
             f"| one process (graphc.value_and_grad) | {one * 1e3:.0f} ms | "
             f"{min(r['one_s']) * 1e3:.0f} ms | {max(r['one_s']) * 1e3:.0f} ms |",
             f"| graphc.dask.value_and_grad | {dist * 1e3:.0f} ms | "
             f"{min(r['dask_s']) * 1e3:.0f} ms | {max(r['dask_s']) * 1e3:.0f} ms |",
             f"ratio (Dask / one process, medians): {dist / one:.2f}x; median of the "
             f"paired ratios: {statistics.median(d / o for d, o in zip(r['dask_s'], r['one_s'])):.2f}x"]
    return "\n".join(lines)


HEADER = ["", "median", "min", "max", "Dask / one process"]


def section(quick, log):
    """``run.py --only dask`` (and ``make bench``): (rows, raw); skipped without Dask."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        log("  dask: distributed is not installed (pip install 'graphc[dask]'); skipped")
        return [["not run: dask/distributed not installed", "", "", "", ""]], {}
    r = run(8192 if quick else 65536, 2, 3 if quick else 7, 2)
    one, dist = statistics.median(r["one_s"]), statistics.median(r["dask_s"])
    paired = statistics.median(d / o for d, o in zip(r["dask_s"], r["one_s"]))
    r.update(ratio_median=dist / one, ratio_median_pair=paired)
    rows = [[f"one process (graphc.value_and_grad), batch {r['batch']:,}", f"{one * 1e3:.0f} ms",
             f"{min(r['one_s']) * 1e3:.0f} ms", f"{max(r['one_s']) * 1e3:.0f} ms", ""],
            [f"graphc.dask.value_and_grad, {r['workers']} workers, chunks {r['chunks']}",
             f"{dist * 1e3:.0f} ms", f"{min(r['dask_s']) * 1e3:.0f} ms",
             f"{max(r['dask_s']) * 1e3:.0f} ms", f"{dist / one:.2f}x (paired {paired:.2f}x)"]]
    return rows, r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--chunks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    result = run(args.batch, args.chunks, args.repeats, args.workers)
    print(report(result))
    return result


if __name__ == "__main__":
    main()
