"""graphc benchmark harness: speed as ratios against hand-written NumPy and peers.

    .venv/bin/python benchmarks/run.py            # full run (make bench), ~3-5 minutes
    python benchmarks/run.py --quick              # ~1 minute, fewer/shorter repeats
    python benchmarks/run.py --only W2,W4         # a subset (keys: W1 W2 W3 W4 W5 T-MLP T-LeNet
                                                  #   bwdfwd compile memory convnets xp numba hessian
                                                  #   per_example checkpoint)
    python benchmarks/run.py --docs docs/performance.md   # also update the doc's results section

Every implementation is first checked against graphc's value and gradients (allclose with
float32 tolerances); a mismatch stops the run (``--keep-going`` marks it "!" instead).
Each time is the median over >= 7 repeats of a timeit loop whose inner count is chosen so
one repeat lasts about ``--target`` seconds, after a warm-up (which also compiles graphc's
and JAX's code).  BLAS threading is left at its defaults and recorded.  Where the timing
passes from one library's worker threads to another's (NumPy's OpenBLAS, torch, JAX) it
sleeps ``SETTLE_S`` first, so no library is timed while another's workers still spin.

Output: a markdown report on stdout, also written to benchmarks/results/latest.md (and the
raw numbers to benchmarks/results/latest.json).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:           # `python benchmarks/run.py` from anywhere
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _early_threads():
    """``--threads N`` must reach XLA before jax is imported (BLAS and torch are set later)."""
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            n = sys.argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
        else:
            continue
        if n == "1":   # XLA has no thread-count flag; it can only turn Eigen threading off
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                       + " --xla_cpu_multi_thread_eigen=false").strip()


_early_threads()

import numpy as np  # noqa: E402

import graphc  # noqa: E402
from benchmarks import goals  # noqa: E402
from benchmarks import peers  # noqa: E402
from benchmarks import rnn as R  # noqa: E402
from benchmarks import sections  # noqa: E402
from benchmarks import workloads as W  # noqa: E402

PEER_COLS = ("torch", "jax", "autograd")
ALL_KEYS = ("W1", "W2", "W3", "W4", "W5", "T-MLP", "T-LeNet", "bwdfwd", "compile", "memory",
            "convnets", "xp", "numba") \
    + tuple(sections.SECTIONS)          # hessian per_example checkpoint (benchmarks/sections.py)


def peers_numba():
    """numba is installed (the ``numba`` section needs it)."""
    import importlib.util
    return importlib.util.find_spec("numba") is not None


# --- timing ----------------------------------------------------------------------------
class Timing:
    def __init__(self, per_call, number, repeats, spread):
        self.per_call, self.number, self.repeats, self.spread = per_call, number, repeats, spread

    def as_json(self):
        return {"median_s": self.per_call, "number": self.number, "repeats": self.repeats,
                "min_s": self.spread[0], "max_s": self.spread[1]}


def calibrate(fn, target, warmup=3):
    """Warm up ``fn`` (graphc / JAX compile on the first call); return (Timer, inner count)."""
    for _ in range(warmup):
        fn()
    timer = timeit.Timer(fn)
    one = min(timer.repeat(repeat=3, number=1))
    number = max(1, int(math.ceil(target / max(one, 1e-9))))
    if number > 1:                       # refine with a longer sample
        one = timer.timeit(number) / number
        number = max(1, int(math.ceil(target / max(one, 1e-9))))
    return timer, number


# Seconds of sleep where the timing passes from one library's worker threads to another's.
# After a threaded call NumPy's OpenBLAS keeps its workers spinning for about 0.1 s (2^28
# cycles) and torch's OpenMP pool spins too; on a 2-core machine the next library's
# threaded kernels then wait for a core, so each implementation paid for the one timed
# before it.  Measured on W4 (LeNet b64, two threads, 2026-12-03): torch 10.8-14.9 ms a
# step timed right after the NumPy implementations, 5.0-5.4 ms after 0.15 s of sleep
# (and 5.0-6.1 ms timed alone in long runs); graphc's first calls after torch at batch 16
# 4.2-5.3 ms against 1.8-2.0 ms.  A 0.05 s sleep was not enough (torch 7.9 ms).
SETTLE_S = 0.15


def pool_of(name):
    """The worker threads an implementation runs on: "torch", "jax" or "numpy" (OpenBLAS:
    graphc, hand-written NumPy, autograd); forward-only names ("fwd:torch") alike."""
    base = name.split(":")[-1]
    return "torch" if base.startswith("torch") else "jax" if base.startswith("jax") else "numpy"


def measure_group(fns, target, repeats, slow=()):
    """Median seconds per call of each callable in ``fns`` ({name: fn}).

    The repeats are interleaved (repeat r of every callable, then repeat r + 1, ...), so a
    burst of load from elsewhere hits all of them alike and ratios stay meaningful.  GC is
    off while timing, as timeit does.  Names in ``slow`` run one call per repeat.

    Within a repeat the callables run grouped by the threads they use (``pool_of``), and
    where the pool changes the timing waits ``SETTLE_S`` and makes one untimed call first,
    so each is timed in the steady state its users see, not while another library's
    workers still hold the cores.
    """
    timers = {}
    for name, fn in fns.items():
        timers[name] = calibrate(fn, 0.0 if name in slow else target, 1 if name in slow else 3)
    pools = ("numpy", "torch", "jax")
    order = sorted(fns, key=lambda name: pools.index(pool_of(name)))   # stable: numpy first
    samples = {name: [] for name in fns}
    last = pool_of(order[-1])
    for _ in range(repeats):
        for name in order:
            timer, number = timers[name]
            if pool_of(name) != last:
                time.sleep(SETTLE_S)
                if name not in slow:
                    timer.timeit(1)
                last = pool_of(name)
            samples[name].append(timer.timeit(number) / number)
    return {name: Timing(statistics.median(v), timers[name][1], repeats, (min(v), max(v)))
            for name, v in samples.items()}


def measure(fn, target, repeats, warmup=3):
    """Median seconds per call of one callable."""
    return measure_group({"fn": fn}, target, repeats)["fn"]


def fmt_time(s):
    if s is None:
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


# --- correctness -----------------------------------------------------------------------
def _close(ref, got, rtol, atol):
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.shape != got.shape:
        return False, f"shape {got.shape} != {ref.shape}"
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64)))) if ref.size else 0.0
    ok = np.allclose(got, ref, rtol=rtol, atol=atol * max(scale, 1e-12))
    return ok, f"max abs err {err:.3g} (max |ref| {scale:.3g})"


def check(workload, log):
    """Run every implementation once and compare with graphc's output.

    NumPy's BLAS runs on one thread here: with two OpenBLAS threads the hand-written
    LeNet sums a GEMM in another order, one pre-activation within float32 rounding of
    zero changes sign, and its ReLU mask flips (docs/performance.md).  That is a kink
    of the loss, not a wrong gradient, so the comparison uses the one-thread sums.
    """
    try:
        import threadpoolctl
        limit = threadpoolctl.threadpool_limits(1, user_api="blas")
    except ImportError:
        limit = None
    try:
        return _check(workload, log)
    finally:
        if limit is not None:
            limit.restore_original_limits()


def _check(workload, log):
    problems = []
    ref_impl = workload.impls[0]
    ref_v, ref_arrays = ref_impl.extract(ref_impl.fn())
    # graphc keeps float32 float32 (a silent upcast would be a graphc bug)
    if workload.key != "W1":
        for i, a in enumerate(ref_arrays):
            if np.asarray(a).dtype != np.float32:
                problems.append(f"{workload.key} {ref_impl.name}: output {i} has dtype "
                                f"{np.asarray(a).dtype}, expected float32")
    for impl in workload.impls[1:]:
        try:
            v, arrays = impl.extract(impl.fn())
        except Exception:
            problems.append(f"{workload.key} {impl.name}: raised\n{traceback.format_exc()}")
            impl.failed = True
            continue
        ok, why = _close(ref_v, v, workload.rtol, workload.atol)
        bad = [] if ok else [f"value {v!r} vs {ref_v!r}: {why}"]
        if len(arrays) != len(ref_arrays):
            bad.append(f"{len(arrays)} arrays vs {len(ref_arrays)}")
        for k, (r, a) in enumerate(zip(ref_arrays, arrays)):
            ok, why = _close(r, a, workload.rtol, workload.atol)
            if not ok:
                bad.append(f"array {k}: {why}")
        if bad:
            problems.append(f"{workload.key} {impl.name} disagrees with {ref_impl.name}: "
                            + "; ".join(bad))
            impl.mismatch = True
    log(f"  checked {workload.key}: {len(workload.impls)} implementations"
        + ("" if not problems else f", {len(problems)} PROBLEM(S)"))
    return problems


# --- environment -----------------------------------------------------------------------
class CpuMonitor:
    """How many cores *other* processes kept busy while we ran (from /proc/stat).

    Benchmarks on a shared machine are only meaningful when this is small: BLAS and torch
    thread pools stall badly when a core they use is taken by another process.
    """

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.time(), self._busy(), self._own()

    @staticmethod
    def _busy():
        try:
            f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
            user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in f[:8])
            return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        except Exception:
            return None

    @staticmethod
    def _own():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def others(self):
        """Average number of cores used by other processes since construction."""
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        wall = max(time.time() - self.t0, 1e-9)
        return max(0.0, ((busy - self.busy0) - (self._own() - self.own0)) / wall)


def wait_quiet(max_wait, log, threshold=0.1, window=5.0):
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` cores."""
    deadline = time.time() + max_wait
    while True:
        m = CpuMonitor()
        time.sleep(window)
        others = m.others()
        if others is None or others < threshold:
            return others
        if time.time() > deadline:
            log(f"  machine still busy ({others:.2f} cores used by others); timing anyway")
            return others
        log(f"  waiting for a quiet machine: {others:.2f} cores busy with other processes")
        time.sleep(10)


def set_threads(n):
    """Opt-in: pin NumPy's BLAS/OpenMP pools and torch to ``n`` threads (JAX via XLA_FLAGS)."""
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(n)
    except ImportError:
        pass
    t = peers.torch()
    if t is not None:
        t.set_num_threads(n)


def environment():
    env = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "python": platform.python_version(), "platform": platform.platform(),
           "numpy": np.__version__, "graphc": getattr(graphc, "__version__", "?")}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                env["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        env["cpu"] = platform.processor() or "?"
    env["cores"] = os.cpu_count()
    try:
        env["cores_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "graphc"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        env["git"] = rev + (" (graphc/ modified)" if dirty else "")
    except Exception:
        pass
    env["thread_env"] = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                     "MKL_NUM_THREADS") if k in os.environ}
    t = peers.torch()
    env["torch"] = f"{t.__version__} (threads {t.get_num_threads()})" if t else "n/a"
    j = peers.jax()
    if j:
        import jaxlib
        env["jax"] = f"{j.__version__} (jaxlib {jaxlib.__version__}, {j.default_backend()})"
    else:
        env["jax"] = "n/a"
    a = peers.autograd()
    if a:
        try:
            from importlib.metadata import version
            env["autograd"] = version("autograd")
        except Exception:
            env["autograd"] = "installed"
    else:
        env["autograd"] = "n/a"
    try:
        import threadpoolctl
        env["threadpools"] = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('user_api')}, "
            f"{p.get('num_threads')} threads, {Path(p.get('filepath', '')).name})"
            for p in threadpoolctl.threadpool_info()]
    except ImportError:
        env["threadpools"] = ["threadpoolctl not installed"]
    return env


# --- the runs --------------------------------------------------------------------------
def run_workload(w, cfg, log, with_fwd=False):
    """Time every implementation of ``w`` (and its forward-only versions when ``with_fwd``),
    interleaved; returns {impl name: Timing or None}, forward-only ones as "fwd:NAME"."""
    fns, slow, out = {}, set(), {}
    for impl in w.impls:
        if getattr(impl, "failed", False):
            out[impl.name] = None
        elif impl.slow and cfg.quick:
            log(f"  {w.key} {impl.name}: skipped in --quick (slow)")
            out[impl.name] = None
        else:
            fns[impl.name] = impl.fn
            if impl.slow:
                slow.add(impl.name)
    if with_fwd and hasattr(w, "fwd"):
        fns.update({"fwd:" + k: fn for k, fn in w.fwd.items()})
    res = measure_group(fns, cfg.target, cfg.repeats, slow)
    for name, t in res.items():
        log(f"  {w.key:8s} {name:12s} {fmt_time(t.per_call):>10s}  "
            f"(x{t.number} per repeat, {t.repeats} repeats)")
    out.update(res)
    return out


def main_rows(results, workloads):
    """The main table: one row per graphc variant."""
    rows = []

    def cell(name, res):
        t = res.get(name)
        return None if t is None else t.per_call

    def row(label, g, hand, res, peers_shown=True, mark=""):
        cells = [label, fmt_time(g) + mark, fmt_time(hand), fmt_ratio(g, hand)]
        for p in PEER_COLS:
            cells.append(fmt_time(cell(p, res)) if peers_shown else "″")
        return cells

    for w in workloads:
        res = results[w.key]
        mark = {i.name: ("!" if getattr(i, "mismatch", False) else "") for i in w.impls}
        g = cell("graphc", res)
        hand = cell("numpy", res)
        if w.key == "W1":
            rows.append(row(w.label + ", hand = NumPy", g, hand, res))
            rows.append(row("W1 same, hand = pure `math`", g, cell("math", res), res, False))
        elif w.get("graphc (nn)") is not None:
            rows.append(row(w.label + ", plain `np` loss", g, hand, res))
            rows.append(row(w.label.split(" ")[0] + " same, `graphc.nn` loss",
                            cell("graphc (nn)", res), hand, res, False))
            if w.get("graphc (logaddexp)") is not None:
                rows.append(row(w.label.split(" ")[0] + " same, `np.logaddexp` loss (hand NumPy "
                                "with `np.logaddexp` too)", cell("graphc (logaddexp)", res),
                                cell("numpy (logaddexp)", res), res, False))
        else:
            rows.append(row(w.label, g, hand, res))
            if w.get("graphc (unrolled)") is not None:
                rows.append(row(w.label.split(" ")[0] + " same as a Python loop (unrolled)",
                                cell("graphc (unrolled)", res), hand, res, False))
        for p in PEER_COLS:
            if mark.get(p):
                rows[-1][4 + PEER_COLS.index(p)] += "!"
    return rows


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def bwd_fwd(w, res):
    """(fwd+bwd)/fwd time ratios per implementation, and graphc's FLOP ratio."""
    cost = w.graphc_fn.graph(*w.graphc_args).cost()
    flop_ratio = cost.total_flops / cost.forward_flops
    rows, raw = [], {}
    for name in w.fwd:
        both, t = res.get(name), res["fwd:" + name]
        raw[name] = {"fwd": t.as_json(), "fwd_bwd_s": both.per_call if both else None}
        rows.append([w.key, name, fmt_time(t.per_call), fmt_time(both.per_call if both else None),
                     fmt_ratio(both.per_call if both else None, t.per_call),
                     f"{flop_ratio:.2f}"])
    raw["cost"] = {"forward_flops": cost.forward_flops, "backward_flops": cost.backward_flops}
    return rows, raw, cost


def compile_times(cfg, log):
    rows, raw = [], {}
    rng = np.random.default_rng(0)
    p, (x, y) = W.lenet_params(rng), W.lenet_data(rng)
    cases = [("LeNet value_and_grad", W.lenet_loss, (p, x, y), 0, 3 if cfg.quick else 7)]
    xs = W.chain_args()
    for length in (1000, 2000):
        cases.append((f"chain of {length} steps, value_and_grad", W.make_chain(length), xs,
                      (0, 1), 1 if cfg.quick else 3))
    rp, (rxs, ry) = R.rnn_params(rng), R.rnn_data(rng, steps=2000)
    for steps in (1000, 2000):
        cases.append((f"RNN of {steps} steps (graphc.scan), value_and_grad", R.rnn_loss,
                      (rp, rxs[:steps], ry), 0, 1 if cfg.quick else 3))
    for label, fn, args, argnums, reps in cases:
        firsts, cacheds, traces = [], [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            graphc.trace(fn, *args)
            traces.append(time.perf_counter() - t0)
            vg = graphc.value_and_grad(fn, argnums=argnums)
            t0 = time.perf_counter()
            vg(*args)
            firsts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            vg(*args)
            cacheds.append(time.perf_counter() - t0)
        fwd_nodes = graphc.trace(fn, *args).nx.number_of_nodes()
        full_nodes = vg.graph(*args).nx.number_of_nodes()
        lines = len(vg.source(*args).splitlines())
        comp = statistics.median(firsts) - statistics.median(cacheds)
        tr = statistics.median(traces)
        log(f"  compile {label}: {comp:.3f} s ({fwd_nodes} traced nodes, {full_nodes} in the "
            f"fwd+bwd graph)")
        raw[label] = {"compile_s": comp, "trace_s": tr, "forward_nodes": fwd_nodes,
                      "graph_nodes": full_nodes, "source_lines": lines, "repeats": reps}
        rows.append([label, f"{fwd_nodes:,}", f"{full_nodes:,}", f"{lines:,}", fmt_time(tr),
                     fmt_time(comp), f"{comp / full_nodes * 1e6:.0f} µs"])
    return rows, raw


def peak_memory(fn, reps=3):
    """Peak bytes allocated by one call of ``fn`` above what was live before it (tracemalloc;
    NumPy reports its array buffers to tracemalloc, torch and XLA do not)."""
    import tracemalloc
    fn()
    peaks = []
    for _ in range(reps):
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = fn()
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
            del out
        finally:
            tracemalloc.stop()
    return min(peaks)


def memory_rows(workloads, log):
    rows, raw = [], {}
    for w in workloads:
        if w.key not in ("W4", "T-LeNet"):
            continue
        g, n = w.get("graphc"), w.get("numpy")
        pg, pn = peak_memory(g.fn), peak_memory(n.fn)
        log(f"  memory {w.key}: graphc {pg / 1e6:.1f} MB, numpy {pn / 1e6:.1f} MB")
        raw[w.key] = {"graphc_bytes": pg, "numpy_bytes": pn}
        rows.append([w.label, f"{pg / 1e6:.1f} MB", f"{pn / 1e6:.1f} MB", f"{pg / pn:.2f}x"])
    return rows, raw


def goal_rows(results, raw):
    """Issue 7's goals, each with the value measured in this run (n/a when not run)."""
    def t(key, name):
        r = results.get(key, {}).get(name)
        return None if r is None else r.per_call

    def ratio(key, name="graphc", ref="numpy"):
        a, b = t(key, name), t(key, ref)
        return None if a is None or b is None else a / b

    rows = []

    def goal(text, value, limit, shown):
        ok = "n/a" if value is None else ("met" if value <= limit else "**not met**")
        rows.append([text, "n/a" if value is None else shown(value), ok])

    # The machine's own speed, next to it: the pure-`math` hand version (0.3 µs on the
    # 2026-11-26 run that met this goal) slows down alike when the VM runs slower.
    math_w1 = t("W1", "math")
    goal("W1 value_and_grad per call ≤ 2 µs" + (f" (pure `math` reference this run: "
                                                 f"{fmt_time(math_w1)}; 0.3 µs on 2026-11-26)"
                                                 if math_w1 else ""),
         t("W1", "graphc"), 2e-6, fmt_time)
    jax_w1 = t("W1", "jax")
    if jax_w1 and t("W1", "graphc"):
        goal("W1 ≥ 5x faster than JAX jit", t("W1", "graphc") * 5, jax_w1,
             lambda v: f"{jax_w1 / t('W1', 'graphc'):.1f}x faster")
    goal("W2 ≤ 1.0x hand NumPy (plain `np` loss)", ratio("W2"), 1.0, lambda v: f"{v:.2f}x")
    goal("W2 ≤ 1.0x hand NumPy (`graphc.nn` loss)", ratio("W2", "graphc (nn)"), 1.0,
         lambda v: f"{v:.2f}x")
    goal("W3 ≤ 1.1x hand NumPy (plain `np` loss)", ratio("W3"), 1.1, lambda v: f"{v:.2f}x")
    goal("W3 ≤ 1.1x hand NumPy (`np.logaddexp` loss)",
         ratio("W3", "graphc (logaddexp)", "numpy (logaddexp)"), 1.1, lambda v: f"{v:.2f}x")
    goal("W3 ≤ 1.1x hand NumPy (`graphc.nn` loss)", ratio("W3", "graphc (nn)"), 1.1,
         lambda v: f"{v:.2f}x")
    goal("W4 ≤ 1.0x hand NumPy", ratio("W4"), 1.0, lambda v: f"{v:.2f}x")
    tw4 = ratio("W4", "graphc", "torch")
    if tw4 is not None:
        rows.append(["W4 against PyTorch eager (aim)", f"{tw4:.2f}x", "met" if tw4 <= 1 else "not yet"])
    for key in ("W2", "W4"):
        both, fwd = t(key, "graphc"), t(key, "fwd:graphc")
        # backward time = (forward + backward) - forward, as the bwdfwd table measures them
        goal(f"{key} backward/forward time ≤ 2",
             None if both is None or fwd is None else (both - fwd) / fwd, 2.0,
             lambda v: f"{v:.2f}")
    comp = raw.get("compile", {})
    lenet = comp.get("LeNet value_and_grad", {}).get("compile_s")
    goal("compile LeNet value_and_grad < 0.5 s", lenet, 0.5, fmt_time)
    r1 = comp.get("chain of 1000 steps, value_and_grad", {})
    r2 = comp.get("chain of 2000 steps, value_and_grad", {})
    c1, c2 = r1.get("compile_s"), r2.get("compile_s")
    goal("compile of a 10,000-node graph < 5 s", c2, 5.0, fmt_time)
    # Linear means constant time per graph node; 10% allows for timing noise.
    per_node = None if not (c1 and c2) else (c2 / r2["graph_nodes"]) / (c1 / r1["graph_nodes"])
    goal("doubling the graph at most doubles compile time (time per node, 2x graph vs 1x, "
         "≤ 1.1 with noise)", per_node, 1.1,
         lambda v: f"{v:.2f} ({c2 / c1:.2f}x time for {r2['graph_nodes'] / r1['graph_nodes']:.2f}x "
                   "nodes)")
    s1 = comp.get("RNN of 1000 steps (graphc.scan), value_and_grad", {})
    s2 = comp.get("RNN of 2000 steps (graphc.scan), value_and_grad", {})
    goal("compile of the 1,000-step scan RNN's value_and_grad < 1 s", s1.get("compile_s"), 1.0,
         fmt_time)
    if s1 and s2:
        rows.append(["generated module of the scan RNN: same size for 1,000 and 2,000 steps",
                     f"{s1['source_lines']} and {s2['source_lines']} lines",
                     "met" if s1["source_lines"] == s2["source_lines"] else "**not met**"])
    mem = raw.get("memory", {}).get("W4")
    goal("peak memory of a W4 step ≤ hand NumPy",
         None if not mem else mem["graphc_bytes"] / mem["numpy_bytes"], 1.0,
         lambda v: f"{v:.2f}x")
    return rows


_DOC_BEGIN = "<!-- make bench: results begin -->"
_DOC_END = "<!-- make bench: results end -->"


def update_doc(path, report):
    """Replace the results section of ``path`` (between the two markers) with ``report``."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    body = report.split("\n", 1)[1].lstrip("\n")         # drop the report's own title
    body = body.replace("\n## ", "\n### ")                 # nested under the doc's section
    block = f"{_DOC_BEGIN}\n{body.rstrip()}\n{_DOC_END}"
    if _DOC_BEGIN in text and _DOC_END in text:
        head, rest = text.split(_DOC_BEGIN, 1)
        text = head + block + rest.split(_DOC_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Latest `make bench` run\n\n" + block + "\n"
    path.write_text(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter repeats, skip slow peers (~1 min)")
    ap.add_argument("--only", default="", help="comma-separated subset of " + " ".join(ALL_KEYS))
    ap.add_argument("--repeats", type=int, default=None, help="timeit repeats (>= 7)")
    ap.add_argument("--target", type=float, default=None, help="seconds per timeit repeat")
    ap.add_argument("--keep-going", action="store_true",
                    help="time implementations that disagree with graphc, marked '!'")
    ap.add_argument("--threads", type=int, default=None,
                    help="pin BLAS / torch / XLA threads (default: leave each library's default)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to SECONDS for other processes to go idle (shared machines)")
    ap.add_argument("--settings", action="store_true",
                    help="also rerun the goals' workloads with one thread and with glibc's malloc "
                         "thresholds raised (subprocesses; make bench) for issue 18's goal table")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latest.md"))
    ap.add_argument("--docs", default=None, metavar="PATH",
                    help="also write the report into PATH's results section (make bench: "
                         "docs/performance.md)")
    cfg = ap.parse_args(argv)
    cfg.repeats = max(7, cfg.repeats or (7 if cfg.quick else 15))
    cfg.target = cfg.target or (0.01 if cfg.quick else 0.025)
    only = set(filter(None, cfg.only.split(","))) or set(ALL_KEYS)
    unknown = only - set(ALL_KEYS)
    if unknown:
        ap.error(f"unknown --only keys {sorted(unknown)}; choose from {' '.join(ALL_KEYS)}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if cfg.wait_quiet:
        wait_quiet(cfg.wait_quiet, log)
    start = time.perf_counter()
    monitor = CpuMonitor()
    if cfg.threads:
        set_threads(cfg.threads)
    log("graphc benchmarks" + (" (--quick)" if cfg.quick else ""))
    env = environment()
    for name in ("torch", "jax", "autograd"):
        if peers.error(name):
            log(f"  {name} unavailable: {peers.error(name)}")

    rng = np.random.default_rng(0)
    builders = [("W1", W.build_w1), ("W2", lambda: W.build_w2(rng)), ("W3", lambda: W.build_w3(rng)),
                ("W4", lambda: W.build_w4(rng)), ("W5", lambda: R.build_w5(rng)), ("T-MLP", lambda: W.build_train_mlp(rng)),
                ("T-LeNet", lambda: W.build_train_lenet(rng))]
    need = set(only)
    if "bwdfwd" in only:
        need |= {"W2", "W4"}
    if "memory" in only:
        need |= {"W4"}
    workloads = [b() for k, b in builders if k in need]

    problems = []
    for w in workloads:
        problems += check(w, log)
    if problems:
        log("\nCORRECTNESS MISMATCH: implementations do not compute the same thing:")
        for p in problems:
            log("  - " + p)
        if not cfg.keep_going:
            log("stopping before timing (pass --keep-going to time anyway, marked '!')")
            return 1

    results, raw = {}, {"env": env, "config": {"quick": cfg.quick, "repeats": cfg.repeats,
                                               "target_s": cfg.target}, "problems": problems}
    for w in workloads:
        results[w.key] = run_workload(w, cfg, log, with_fwd="bwdfwd" in only)
        raw[w.key] = {k: (t.as_json() if t else None) for k, t in results[w.key].items()}

    header = ["workload", "graphc", "hand NumPy", "ratio graphc/NumPy", "torch eager", "jax jit",
              "autograd"]
    shown = [w for w in workloads if w.key in only]
    parts = [f"# graphc benchmarks{' (--quick)' if cfg.quick else ''}", "",
             f"{env['date']} · {env.get('cpu', '?')} · {env['cores']} cores · numpy {env['numpy']}"
             f" · torch {env['torch']} · jax {env['jax']} · autograd {env['autograd']}", ""]
    if shown:
        parts += ["Median time per call (value and gradients of all parameters unless noted); "
                  "float32 except W1 (float64). `″` = same peers as the row above; `!` = "
                  "disagrees with graphc; n/a = not installed or not measured.", "",
                  md_table(header, main_rows(results, shown)), ""]

    if "bwdfwd" in only:
        rows, raw["bwdfwd"] = [], {}
        for w in workloads:
            if hasattr(w, "fwd"):
                r, rr, cost = bwd_fwd(w, results[w.key])
                rows += r
                raw["bwdfwd"][w.key] = rr
        parts += ["## Backward / forward", "",
                  "Forward = the loss alone (graphc.compile of the same function; torch under "
                  "no_grad; jax.jit of the loss). FLOP ratio = (forward + backward) / forward "
                  "from `graph.cost()` of graphc's value_and_grad graph.", "",
                  md_table(["workload", "impl", "forward", "fwd+bwd", "time ratio", "FLOP ratio"],
                           rows), ""]

    if "compile" in only:
        rows, raw["compile"] = compile_times(cfg, log)
        parts += ["## Compile time (trace + AD + optimize + codegen)", "",
                  "First call minus a cached call of a fresh value_and_grad (median of the "
                  "repeats); 'trace' is graphc.trace of the forward function alone.", "",
                  md_table(["graph", "traced nodes", "fwd+bwd graph nodes", "generated lines",
                            "trace", "compile", "per graph node"], rows), ""]

    if "memory" in only:
        rows, raw["memory"] = memory_rows(workloads, log)
        parts += ["## Peak memory", "",
                  "Peak bytes allocated during one call above what was live before it "
                  "(tracemalloc, min of 3 calls).", "",
                  md_table(["workload", "graphc", "hand NumPy", "ratio"], rows), ""]

    if "convnets" in only:              # issue 18: benchmarks/convnets.py
        from benchmarks import convnets
        lines, raw["convnets"] = convnets.section(cfg, log)
        parts += lines

    if "xp" in only:            # the array-API target (benchmarks/array_api.py)
        from benchmarks import array_api
        rows, raw["xp"] = array_api.section(cfg.quick, log)
        parts += rows

    if "numba" in only and peers_numba():     # the fused CPU target (benchmarks/numba_target.py)
        from benchmarks import numba_target
        rows, raw["numba"] = numba_target.section(cfg.quick, log)
        parts += rows

    sections.add_sections(only, cfg.quick, log, parts, raw, md_table)
    parts += ["## Goals (issues 7 and 15)", "",
              md_table(["goal", "measured", "status"], goal_rows(results, raw)), ""]
    runs = {"default threads": json.loads(json.dumps(raw, default=str))}
    if cfg.settings:
        for setting in goals.SETTINGS:
            runs[setting] = raw[f"settings: {setting}"] = goals.rerun(setting, cfg.quick, log)
    parts += ["## Goals (issues 17 and 18)", "",
              "Columns: this run (each library's default threads, glibc's default malloc)"
              + (", the goals' workloads rerun with one thread, and rerun with glibc's "
                 "`MALLOC_MMAP_THRESHOLD_`/`MALLOC_TRIM_THRESHOLD_` raised (benchmarks/goals.py)"
                 if cfg.settings else "; `--settings` adds one thread and raised malloc thresholds")
              + ". A goal is met when it is met in every column that measured it.", "",
              goals.table(runs, md_table), ""]

    others = monitor.others()
    load_note = []
    if others is not None:
        env["other_load"] = f"{others:.2f} cores busy with other processes on average during the run"
        if others > 0.25:
            load_note = [f"**Warning: other processes kept {others:.2f} of {env['cores']} cores busy "
                         "during this run; multi-threaded BLAS and torch times are then inflated "
                         "by scheduler stalls. Rerun on a quiet machine (or compare with "
                         "`--threads 1`).**", ""]
            log("WARNING: " + env["other_load"])
    if cfg.threads:
        env["threads"] = f"pinned to {cfg.threads} (--threads)"
    parts[4:4] = load_note
    parts += ["## Machine", ""]
    for k in ("date", "cpu", "cores", "cores_usable", "platform", "python", "numpy", "graphc", "git",
              "torch", "jax", "autograd", "thread_env", "threads", "other_load"):
        if k in env and env[k] not in ({}, None):
            parts.append(f"- {k}: {env[k]}")
    parts.append("- BLAS / OpenMP pools (threadpoolctl): " + "; ".join(env["threadpools"]))
    parts.append(f"- timing: median of {cfg.repeats} timeit repeats, inner loop sized to "
                 f"~{cfg.target * 1e3:.0f} ms per repeat, after warm-up; the implementations of a "
                 "workload are timed interleaved (repeat r of each, then r + 1); autograd LeNet "
                 "one call per repeat" + (" (skipped with --quick)" if cfg.quick else ""))
    elapsed = time.perf_counter() - start
    parts.append(f"- run took {elapsed:.0f} s")
    if problems:
        parts += ["", "## Correctness problems", ""] + [f"- {p}" for p in problems]
    report = "\n".join(parts) + "\n"
    print(report)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    log(f"wrote {out} and {out.with_suffix('.json').name} ({elapsed:.0f} s)")
    if cfg.docs:
        update_doc(cfg.docs, report)
        log(f"updated the results section of {cfg.docs}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
