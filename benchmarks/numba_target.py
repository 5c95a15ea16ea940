"""The ``"numba"`` target (fused CPU loops) against the NumPy target and hand-written NumPy
(``run.py --only numba``).

W3 (2-3-3-1 sigmoid net, batch 256) and W2 (MLP 784-256-128-10, batch 128) value_and_grad,
timed interleaved (one batch of calls of each per repeat, many repeats); issue 18's goal is
W3 <= 0.5x hand NumPy.  Then the MLP at batch 65,536: each fused kernel of its generated
module timed alone on its real arguments, in bytes moved per second (each full-size array
read or written once), against ``np.copyto`` of one such array (read + write): a kernel near
the copy's rate runs at memory bandwidth.

    .venv/bin/python benchmarks/numba_target.py [--quick] [--cpu-time]   # this section alone
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import graphc  # noqa: E402
from benchmarks import workloads as W  # noqa: E402

CASES = (("W3", "sigmoid net 2-3-3-1 b256", W.sig_params, W.sig_data, W.sig_loss_np,
          W.sig_value_and_grad_numpy),
         ("W2", "MLP 784-256-128-10 b128", W.mlp_params, W.mlp_data, W.mlp_loss_np,
          W.mlp_value_and_grad_numpy))


CLOCK = time.perf_counter          # --cpu-time: time.process_time (busy machines)


def _interleaved(fns, pairs, inner):
    """Per repeat, ``inner`` calls of each of ``fns`` in turn: {i: [seconds per call]}."""
    out = {i: [] for i in range(len(fns))}
    for _ in range(pairs):
        for i, fn in enumerate(fns):
            t0 = CLOCK()
            for _ in range(inner):
                fn()
            out[i].append((CLOCK() - t0) / inner)
    return out


def _pair_ratio(t, a, b):
    """The median over repeats of ``t[a] / t[b]`` measured side by side."""
    return statistics.median(x / y for x, y in zip(t[a], t[b]))


def workload_rows(quick=False, log=print):
    rng = np.random.default_rng(0)
    rows, raw = [], {}
    for key, label, params, data, loss, hand in CASES:
        p, (x, y) = params(rng), data(rng)
        fused = graphc.value_and_grad(loss, target="numba")
        plain = graphc.value_and_grad(loss)
        (va, ga), (vb, gb) = fused(p, x, y), plain(p, x, y)
        if not np.isclose(va, vb, rtol=1e-5) or any(
                not np.allclose(ga[k], gb[k], rtol=1e-5, atol=1e-6) for k in ga):
            raise AssertionError(f"{key}: the numba target disagrees with the NumPy target")
        log(f"  numba {key} ...")
        t = _interleaved([lambda: fused(p, x, y), lambda: plain(p, x, y), lambda: hand(p, x, y)],
                         10 if quick else 40, 20 if key == "W3" else 5)
        best = {i: min(v) for i, v in t.items()}
        med = {i: statistics.median(v) for i, v in t.items()}
        raw[key] = {"numba_s": med[0], "numpy_target_s": med[1], "hand_numpy_s": med[2],
                    "numba_over_hand_min": best[0] / best[2],
                    "numba_over_numpy_target_min": best[0] / best[1],
                    "numba_over_hand_paired": _pair_ratio(t, 0, 2),
                    "numba_over_numpy_target_paired": _pair_ratio(t, 0, 1)}
        rows.append([f"{key} {label}", f"{med[0] * 1e6:.0f} µs", f"{med[1] * 1e6:.0f} µs",
                     f"{med[2] * 1e6:.0f} µs", f"{best[0] / best[2]:.2f}x",
                     f"{_pair_ratio(t, 0, 2):.2f}x", f"{best[0] / best[1]:.2f}x"])
    return rows, raw


def _kernels(fn):
    """The fused kernels of a compiled function's module: {name: dispatcher}."""
    entry = next(iter(fn._cache.values()))
    return {k: v for k, v in entry.fn.__globals__.items() if k.startswith("fused_")}


def bandwidth_rows(n=65_536, quick=False, log=print):
    """MLP at batch ``n``: the forward kernel (bias + ReLU, in place on the GEMM result) and
    the backward kernel (ReLU mask + the bias gradient's column sum) on arrays of their real
    shape, against np.copyto of one (n, 256) float32 array.

    Each repeat runs every case once, ``np.copyto`` among them, so that each kernel's
    time can be paired with the copy's of the same repeat: ``copy_over_kernel`` is the
    median over repeats of (copy's GB/s) / (the case's GB/s), the number the goal reads
    (a busy machine slows both alike).  Bytes moved count each full-size array read or
    written once, a bool array a quarter of one; the (256,) bias and column sum are left
    out, and so are the cache lines a store reads before it writes them)."""
    rng = np.random.default_rng(0)
    p = W.mlp_params(rng)
    a = rng.standard_normal((n, 256), dtype=np.float32)
    b = rng.standard_normal((n, 256), dtype=np.float32)
    gemm = a.copy()                        # fused_h1 adds the bias into it, in place
    dst = np.empty_like(a)
    reps = 7 if quick else 25
    nbytes = a.nbytes
    fused = graphc.value_and_grad(W.mlp_loss_np, target="numba")
    x, y = W.mlp_data(rng, n)
    fused(p, x, y)                         # compile the module (its loops are over n rows)
    del x, y
    k = _kernels(fused)
    bias, colsum = p["b1"], np.empty(256, np.float32)
    cases = {
        "bias + ReLU in place (fused_h1: read 1, write 2)":
            (lambda: k["fused_h1"](gemm, bias, dst), 3),
        "ReLU mask + column sum backward (fused_d_b1: read 2, write 1)":
            (lambda: k["fused_d_b1"](a, b, dst, colsum), 3),
        "the same bias + ReLU in NumPy (add; np.maximum)":
            (lambda: np.maximum(0, np.add(a, bias, out=dst), out=dst), 4),
        # (a > 0 writes and multiply reads a bool array: a quarter of the bytes, twice)
        "the same mask + column sum in NumPy (multiply by a > 0; sum(axis=0))":
            (lambda: np.multiply(b, a > 0, out=dst).sum(axis=0), 4.5),
        "np.copyto (read 1, write 1)": (lambda: np.copyto(dst, a), 2),
    }
    names = list(cases)
    for fn, _ in cases.values():
        fn()
    t = _interleaved([fn for fn, _ in cases.values()], reps, 1)
    copy = names.index("np.copyto (read 1, write 1)")
    rows, raw = [], {}
    for i, name in enumerate(names):
        arrays = cases[name][1]
        best = min(t[i])
        gbs = arrays * nbytes / best / 1e9
        # (copy's bytes / copy's time) / (these bytes / this time), repeat by repeat
        paired = statistics.median(2 * tk / (arrays * tc) for tk, tc in zip(t[i], t[copy]))
        raw[name] = {"s": best, "GB_per_s": gbs, "copy_over_kernel": paired}
        rows.append([name, f"{best * 1e3:.2f} ms", f"{arrays * nbytes / 2**20:.0f} MiB",
                     f"{gbs:.1f} GB/s", f"{paired:.2f}"])
        log(f"  numba bandwidth {name}: {best * 1e3:.2f} ms, copy / this {paired:.2f}")
    return rows, raw


def section(quick=False, log=print):
    """``(markdown lines, raw)`` for run.py's report."""
    from benchmarks.run import md_table
    rows, raw = workload_rows(quick, log)
    brows, raw["bandwidth"] = bandwidth_rows(quick=quick, log=log)
    return ["## Fused CPU target (numba)", "",
            "value_and_grad compiled with `target=\"numba\"` against the NumPy target and "
            "hand-written NumPy, interleaved (median per call; ratios of the minimum times). "
            "Goal (issue 18): W3 <= 0.5x hand NumPy.", "",
            md_table(["workload", "numba target", "NumPy target", "hand NumPy",
                      "numba / hand (min)", "numba / hand (paired median)",
                      "numba / NumPy target"], rows), "",
            "MLP at batch 65,536: the fused kernels on (65536, 256) float32 arrays, bytes "
            "moved (each full-size array read or written once) per second, against a plain "
            "copy of one array (each repeat runs every case; the last column is the median "
            "over repeats of the copy's rate over the case's, goal <= 1.1).", "",
            md_table(["operation", "time (min)", "bytes moved", "rate",
                      "np.copyto rate / this (paired)"], brows), ""], raw


if __name__ == "__main__":
    if "--cpu-time" in sys.argv:
        CLOCK = time.process_time
    out, _ = section(quick="--quick" in sys.argv, log=lambda m: print(m, file=sys.stderr))
    print("\n".join(out))
