"""Line timing of graphc's generated code: which generated lines dominate.

    python benchmarks/hotspots.py                 # W2 (both losses), W3, W4, train steps
    python benchmarks/hotspots.py W4 --top 15 --calls 30
    python benchmarks/hotspots.py W4 --threads 1 --no-page-faults   # compute only

The generated module (``compiled.source(*args)``) is executed on its own and timed line by
line with ``sys.settrace``: for each call, the time from one line event to the next is
charged to the line, summed within the call (loops), and the report shows the median
over calls, which shrugs off the odd scheduler stall on a busy machine.  Tracing adds
about a microsecond per executed line, so µs-scale lines read slightly high.

By default glibc returns large freed blocks to the OS, so a line that allocates a
multi-megabyte result (im2col windows, a batched GEMM's output) also pays for touching
fresh pages, about 1 ms per 4 MB here: on LeNet that is over a third of the time.
``--no-page-faults`` reruns with malloc keeping freed memory, which leaves the compute.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import workloads as W  # noqa: E402


def generated_function(compiled, args):
    """Execute ``compiled``'s generated source for ``args``; return (function, source lines)."""
    src = compiled.source(*args)
    ns: dict = {}
    filename = f"<graphc:{compiled.export_name()}>"
    exec(compile(src, filename, "exec"), ns)
    return ns[compiled.export_name()], src.splitlines()


def line_times(fn, args, calls=20, warmup=3):
    """{line number: median seconds per call}, and the median total per call."""
    for _ in range(warmup):
        fn(*args)
    code = fn.__code__
    per_call: list[dict] = []
    state = {"line": None, "t": 0.0, "acc": None}

    def local(frame, event, arg):
        now = time.perf_counter()
        acc, line = state["acc"], state["line"]
        if line is not None:
            acc[line] = acc.get(line, 0.0) + now - state["t"]
        state["line"] = frame.f_lineno if event == "line" else None
        state["t"] = time.perf_counter()
        return local

    def glob(frame, event, arg):
        return local if frame.f_code is code else None

    totals = []
    for _ in range(calls):
        state["acc"], state["line"] = {}, None
        sys.settrace(glob)
        t0 = time.perf_counter()
        try:
            fn(*args)
        finally:
            sys.settrace(None)
        totals.append(time.perf_counter() - t0)
        per_call.append(state["acc"])
    lines = set().union(*per_call)
    med = {ln: statistics.median(c.get(ln, 0.0) for c in per_call) for ln in lines}
    return med, statistics.median(totals)


def report(label, compiled, args, top=10, calls=20, out=print):
    fn, src = generated_function(compiled, args)
    med, total = line_times(fn, args, calls=calls)
    out(f"\n### {label}: {total * 1e3:.2f} ms per traced call (median of {calls})\n")
    out("| share | time | generated line |")
    out("|---:|---:|---|")
    for ln, t in sorted(med.items(), key=lambda kv: -kv[1])[:top]:
        text = src[ln - 1].split("#")[0].strip()
        if len(text) > 110:
            text = text[:107] + "..."
        out(f"| {t / total:5.1%} | {t * 1e6:,.0f} µs | `{text}` |")
    return med, total, src


def compile_breakdown(fn, args, argnums=0, out=print, label=None):
    """Where graphc's first call goes: trace (incl. AD), AD alone, optimize, codegen, exec.

    Wraps graphc's internal phase functions for one first call (internal names: if they
    move, this prints what it could and says so).
    """
    import graphc
    from graphc import autodiff, codegen, compiled, loader
    phases = {}
    patched = []

    def wrap(obj, attr, key):
        orig = getattr(obj, attr, None)
        if orig is None:
            return
        def timed(*a, **k):
            t0 = time.process_time()          # (CPU time: steady on a shared machine)
            try:
                return orig(*a, **k)
            finally:
                phases[key] = phases.get(key, 0.0) + time.process_time() - t0
        setattr(obj, attr, timed)
        patched.append((obj, attr, orig))
    wrap(compiled, "trace_into", "trace + AD")
    wrap(autodiff, "_backward", "AD (backward)")
    wrap(compiled, "optimize", "optimize passes")
    wrap(codegen, "generate_module", "codegen")
    wrap(loader, "exec_module", "exec generated module")
    try:
        vg = graphc.value_and_grad(fn, argnums=argnums)
        t0 = time.process_time()
        vg(*args)
        first = time.process_time() - t0
        t0 = time.process_time()
        vg(*args)
        cached = time.process_time() - t0
    finally:
        for obj, attr, orig in reversed(patched):
            setattr(obj, attr, orig)
    out(f"\n### compile breakdown: {label or getattr(fn, '__name__', fn)}\n")
    out("| phase | time |")
    out("|---|---:|")
    for k, v in phases.items():
        out(f"| {k} | {v * 1e3:,.1f} ms |")
    rest = first - cached - sum(v for k, v in phases.items() if k != "AD (backward)")
    out(f"| rest (the collector's pass over the new objects, caches, entry) | {rest * 1e3:,.1f} ms |")
    out(f"| first call − cached call (CPU time) | {(first - cached) * 1e3:,.1f} ms |")
    if len(patched) < 5:
        out("(some graphc internals were not found; breakdown incomplete)")
    return phases


def alternatives(out=print, repeats=9):
    """The idioms graphc generates, next to what a hand-written version uses, on W2/W4 shapes."""
    import timeit
    rng = np.random.default_rng(0)
    f32 = np.float32
    conv1 = rng.normal(size=(64, 6, 28, 28)).astype(f32)      # LeNet conv1 output
    d1 = rng.normal(size=conv1.shape).astype(f32)
    gt1 = conv1 > 0
    a = rng.normal(size=(128, 256)).astype(f32)                # MLP first hidden layer
    da = rng.normal(size=a.shape).astype(f32)
    logits = rng.normal(size=(128, 10)).astype(f32)
    lab = rng.integers(0, 10, 128)
    rows = np.arange(128)
    # max-pool 2x2 on conv1's shape: graphc's strided slices and first-max mask vs the
    # hand-written mask ``window == max`` (which splits ties; graphc must not)
    swv = np.lib.stride_tricks.sliding_window_view
    relu1 = np.maximum(conv1, 0)
    dpool = rng.normal(size=(64, 6, 14, 14)).astype(f32)
    # conv2 col2im: d_cols as graphc's per-sample GEMM lays it out, (N, C, KH, KW, OH, OW)
    w2 = rng.normal(size=(16, 150)).astype(f32)
    dconv2 = rng.normal(size=(64, 16, 100)).astype(f32)

    def col2im_graphc():
        d = (w2.T @ dconv2).reshape(64, 6, 5, 5, 10, 10)
        out = np.zeros((64, 6, 14, 14), f32)
        for i in range(5):
            for j in range(5):
                out[:, :, i:i + 10, j:j + 10] += d[:, :, i, j]
        return out

    def col2im_nhwc():
        d = (dconv2.transpose(0, 2, 1).reshape(6400, 16) @ w2).reshape(64, 10, 10, 6, 5, 5)
        out = np.zeros((64, 14, 14, 6), f32)
        for i in range(5):
            for j in range(5):
                out[:, i:i + 10, j:j + 10, :] += d[:, :, :, :, i, j]
        return out

    def pool_graphc():
        return np.maximum(np.maximum(relu1[:, :, 0::2, 0::2], relu1[:, :, 0::2, 1::2]),
                          np.maximum(relu1[:, :, 1::2, 0::2], relu1[:, :, 1::2, 1::2]))

    pooled = pool_graphc()

    def pool_bwd_graphc():
        mask = np.empty((2, 2, 64, 6, 14, 14), dtype=bool)
        seen = np.zeros((64, 6, 14, 14), dtype=bool)
        for i in range(2):
            for j in range(2):
                np.equal(relu1[:, :, i::2, j::2], pooled, out=mask[i, j])
                mask[i, j] &= ~seen
                seen |= mask[i, j]
        out = np.empty((64, 6, 28, 28), f32)
        for i in range(2):
            for j in range(2):
                np.multiply(dpool, mask[i, j], out=out[:, :, i::2, j::2])
        return out

    def pool_bwd_hand():
        v = relu1.reshape(64, 6, 14, 2, 14, 2)
        return ((v == pooled[:, :, :, None, :, None]) * dpool[:, :, :, None, :, None]).reshape(
            64, 6, 28, 28)

    def im2col_graphc():
        xp = np.zeros((64, 1, 32, 32), f32)
        xp[:, :, 2:30, 2:30] = conv1[:, :1]
        return swv(xp, (5, 5), axis=(2, 3)).transpose(0, 1, 4, 5, 2, 3).reshape(64, 25, 784)

    cases = [
        ("ReLU forward, LeNet conv1 (64,6,28,28)", "np.where(gt, conv, 0.0)",
         lambda: np.where(gt1, conv1, 0.0), "np.maximum(conv, 0)", lambda: np.maximum(conv1, 0)),
        ("ReLU backward, LeNet conv1", "np.where(gt, d_relu, 0.0)",
         lambda: np.where(gt1, d1, 0.0), "d_relu * gt", lambda: d1 * gt1),
        ("np.maximum(0, a) backward, MLP (128,256)",
         "np.where(a > 0, d, np.where(0 == a, d * 0.5, 0.0))",
         lambda: np.where(a > 0, da, np.where(0 == a, da * 0.5, 0.0)), "d * (a > 0)",
         lambda: da * (a > 0)),
        ("im2col, LeNet conv1 (64·784 windows of 25)",
         "swv(padded, (5,5)).transpose(0,1,4,5,2,3).reshape(64, 25, 784)", im2col_graphc,
         "NHWC: swv(pad(x), (5,5), axis=(1,2)).reshape(50176, 25)",
         lambda: swv(np.pad(conv1[:, 0], ((0, 0), (2, 2), (2, 2)))[..., None], (5, 5),
                     axis=(1, 2)).reshape(50176, 25)),
        ("max-pool forward, LeNet pool1", "np.maximum of 4 strided slices", pool_graphc,
         "max over a reshaped (N,C,14,2,14,2) view", lambda: relu1.reshape(
             64, 6, 14, 2, 14, 2).max(axis=(3, 5))),
        ("max-pool backward, LeNet pool1",
         "first-max mask + 4 np.multiply(.., out=strided slice)", pool_bwd_graphc,
         "(window == max) * upstream (splits ties)", pool_bwd_hand),
        ("conv2 input gradient: GEMM + col2im", "NCHW: per-sample GEMM, 25 strided adds",
         col2im_graphc, "NHWC: one GEMM, 25 strided adds", col2im_nhwc),
        ("cross-entropy seed, MLP (128,10)", "zeros + np.add.at(d, (rows, y), -1/n)",
         lambda: np.add.at(np.zeros((128, 10), f32), (rows, lab), np.full(128, -1 / 128, f32)),
         "zeros; d[rows, y] = -1/n", lambda: np.zeros((128, 10), f32).__setitem__((rows, lab), -1 / 128)),
    ]

    def t(fn):
        timer = timeit.Timer(fn)
        one = min(timer.repeat(3, 1))
        number = max(1, int(0.02 / max(one, 1e-9)))
        return statistics.median(timer.repeat(repeats, number)) / number

    del logits
    out("\n### generated idiom vs hand-written idiom (same shapes)\n")
    out("| where | graphc generates | time | hand-written | time | ratio |")
    out("|---|---|---:|---|---:|---:|")
    res = []
    for where, gname, gfn, hname, hfn in cases:
        tg, th = t(gfn), t(hfn)
        res.append((where, tg, th))
        out(f"| {where} | `{gname}` | {tg * 1e6:,.0f} µs | `{hname}` | {th * 1e6:,.0f} µs | "
            f"{tg / th:.1f}x |")
    return res


def cases():
    import graphc
    rng = np.random.default_rng(0)
    out = {}
    p, (x, y) = W.mlp_params(rng), W.mlp_data(rng)
    out["W2"] = ("W2 MLP, plain np loss", graphc.value_and_grad(W.mlp_loss_np), (p, x, y))
    out["W2nn"] = ("W2 MLP, graphc.nn loss", graphc.value_and_grad(W.mlp_loss_nn), (p, x, y))
    p3, (x3, y3) = W.sig_params(rng), W.sig_data(rng)
    out["W3"] = ("W3 sigmoid net, plain np loss", graphc.value_and_grad(W.sig_loss_np), (p3, x3, y3))
    p4, (x4, y4) = W.lenet_params(rng), W.lenet_data(rng)
    out["W4"] = ("W4 LeNet", graphc.value_and_grad(W.lenet_loss), (p4, x4, y4))
    out["T-LeNet"] = ("LeNet train step", W._graphc_train_step(W.lenet_loss), (p4, x4, y4))
    return out


def convnet_case(key):
    """``NET:BATCH`` (benchmarks/convnets.py, e.g. ``lenet-valid:16``): (label, compiled, args)."""
    import graphc
    from benchmarks import convnets
    name, n = key.split(":")
    rng = np.random.default_rng(0)
    p = convnets.net_params(name, rng)
    x, y = convnets.net_data(name, int(n), rng)
    return (f"{name} batch {n}", graphc.value_and_grad(convnets.make_graphc_loss(name)), (p, x, y))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("which", nargs="*",
                    help="W2 W2nn W3 W4 T-LeNet compile idioms, or a convnets shape NET:BATCH "
                         "such as lenet-valid:16 (default: all but the convnets shapes)")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--source", action="store_true", help="also print the generated source")
    ap.add_argument("--threads", type=int, default=None,
                    help="pin BLAS threads (1 gives stable line costs on a busy machine)")
    ap.add_argument("--no-page-faults", action="store_true",
                    help="rerun with glibc's malloc keeping freed memory (MALLOC_MMAP_THRESHOLD_, "
                         "MALLOC_TRIM_THRESHOLD_), so large temporaries are not page-faulted "
                         "in again on every call: separates compute from first-touch cost")
    a = ap.parse_args(argv)
    if a.no_page_faults and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 28), MALLOC_TRIM_THRESHOLD_=str(1 << 28))
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    if a.threads:
        import threadpoolctl
        threadpoolctl.threadpool_limits(a.threads)
    all_cases = cases()
    for key in a.which or list(all_cases) + ["idioms", "compile"]:
        if key == "idioms":
            alternatives()
            continue
        if key == "compile":
            rng = np.random.default_rng(0)
            p4, (x4, y4) = W.lenet_params(rng), W.lenet_data(rng)
            compile_breakdown(W.lenet_loss, (p4, x4, y4), 0, label="LeNet value_and_grad")
            for n in (1000, 2000):
                compile_breakdown(W.make_chain(n), W.chain_args(), (0, 1),
                                  label=f"chain of {n} steps (~{5 * n} traced nodes)")
            continue
        label, compiled, args = convnet_case(key) if ":" in key else all_cases[key]
        if a.source:
            print(compiled.source(*args))
        report(label, compiled, args, top=a.top, calls=a.calls)


if __name__ == "__main__":
    main()
