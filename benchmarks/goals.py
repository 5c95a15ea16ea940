"""The goal table of issues 17 and 18, measured under several settings in one ``make bench``.

Issue 18 asks for its goals "with the date, machine, library versions and both thread
settings", and for speed that does not depend on glibc's allocator tuning.  So ``run.py
--settings`` reruns the workloads the goals read in subprocesses:

- ``one thread``: ``run.py --threads 1`` (BLAS, torch and XLA pinned to one thread);
- ``malloc raised``: default threads, with ``MALLOC_MMAP_THRESHOLD_`` and
  ``MALLOC_TRIM_THRESHOLD_`` raised, so that no large temporary goes back to the kernel
  between calls (nobody's code faults pages in again).

The main run is the first column (library default threads, glibc's default malloc).  Each
cell reads ``latest.json``-style raw results, so the same function renders a run that
happened in this process and one that a subprocess wrote.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: the run.py keys the goals read; a settings rerun measures only these
KEYS = ("W1", "W2", "W3", "W4", "T-LeNet", "convnets", "numba", "xp")

SETTINGS = {
    "one thread": {"args": ["--threads", "1"], "env": {}},
    "malloc raised": {"args": [], "env": {"MALLOC_MMAP_THRESHOLD_": str(1 << 28),
                                          "MALLOC_TRIM_THRESHOLD_": str(1 << 28)}},
}


def rerun(setting, quick, log):
    """Run ``run.py --only KEYS`` in a subprocess under ``setting``; its raw results (or {})."""
    spec = SETTINGS[setting]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.md"
        args = [sys.executable, str(Path(__file__).with_name("run.py")), "--only", ",".join(KEYS),
                "--out", str(out)] + spec["args"] + (["--quick"] if quick else [])
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        env.update(spec["env"])
        log(f"settings: rerunning {','.join(KEYS)} with {setting} (a subprocess)")
        proc = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        if proc.returncode != 0 or not out.with_suffix(".json").exists():
            log(f"  {setting}: the rerun failed: {proc.stderr.strip().splitlines()[-1:]}")
            return {}
        return json.loads(out.with_suffix(".json").read_text())


def _t(raw, key, name):
    r = raw.get(key, {}).get(name)
    return r.get("median_s") if isinstance(r, dict) else None


def _ratio(raw, key, name="graphc", ref="numpy"):
    a, b = _t(raw, key, name), _t(raw, key, ref)
    return None if a is None or b is None else a / b


def _conv(raw, ref):
    """(worst ratio, count met, count) of graphc / ``ref`` over the convnets shapes."""
    nets = raw.get("convnets") or {}
    ratios = []
    for r in nets.values():
        base = (min(r[h] for h in ("numpy (tuned)", "numpy (einsum)", "numpy (nhwc)") if h in r)
                if ref == "hand" else r.get("torch"))
        if base:
            ratios.append(r["graphc"] / base)
    if not ratios:
        return None
    return max(ratios), sum(x <= 0.9 for x in ratios), len(ratios)


def _x(v):
    return f"{v:.2f}x"


def goals():
    """[(text, limit, value(raw), shown(value))]: each goal of issues 17 and 18."""
    def conv(ref):
        return (lambda raw: _conv(raw, ref),
                lambda v: f"{v[1]} of {v[2]} met, worst {v[0]:.2f}x")

    def numba(key):
        return lambda raw: (raw.get("numba") or {}).get("W3", {}).get(key)

    def xp(key):
        return lambda raw: (raw.get("xp") or {}).get(key, {}).get("ratio_median_pair")

    def bandwidth(raw):
        b = (raw.get("numba") or {}).get("bandwidth") or {}
        copy = next((v["GB_per_s"] for k, v in b.items() if k.startswith("np.copyto")), None)
        fused = [v["GB_per_s"] for k, v in b.items() if not k.startswith(("np.", "the same"))]
        paired = [v.get("copy_over_kernel") for k, v in b.items()
                  if not k.startswith(("np.", "the same"))]
        if paired and None not in paired:       # (each kernel timed next to np.copyto)
            return max(paired)
        return None if not copy or not fused else copy / min(fused)

    return [
        ("W4 LeNet b64 ≤ 0.9x PyTorch eager", 0.9,
         lambda raw: _ratio(raw, "W4", "graphc", "torch"), _x),
        ("W4 LeNet b64 ≤ 0.9x the best hand NumPy", 0.9, lambda raw: _ratio(raw, "W4"), _x),
        ("every conv shape ≤ 0.9x the best hand NumPy", None, *conv("hand")),
        ("every conv shape ≤ 0.9x PyTorch eager", None, *conv("torch")),
        ("W2 ≤ 1.0x hand NumPy, plain-NumPy loss", 1.0, lambda raw: _ratio(raw, "W2"), _x),
        ("W3 ≤ 1.1x hand NumPy, NumPy target", 1.1, lambda raw: _ratio(raw, "W3"), _x),
        ('W3 ≤ 0.5x hand NumPy with target="numba"', 0.5, numba("numba_over_hand_min"), _x),
        ("MLP b65,536 fused elementwise at memory bandwidth (np.copyto GB/s / slowest "
         "kernel's, ≤ 1.1)", 1.1, bandwidth, lambda v: f"{v:.2f}"),
        ("W1 ≤ 2 µs per call", 2e-6, lambda raw: _t(raw, "W1", "graphc"),
         lambda v: f"{v * 1e6:.1f} µs"),
        ("LeNet train step ≤ 0.9x PyTorch eager", 0.9,
         lambda raw: _ratio(raw, "T-LeNet", "graphc", "torch"), _x),
        ("10,000-node graph compiles in < 1.5 s", 1.5,
         lambda raw: (raw.get("compile") or {}).get("chain of 2000 steps, value_and_grad",
                                                    {}).get("compile_s"),
         lambda v: f"{v:.2f} s"),
        ('issue 17: target="array-api" on NumPy ≤ 1.1x the NumPy target, W2', 1.1, xp("W2"), _x),
        ('issue 17: target="array-api" on NumPy ≤ 1.1x the NumPy target, W4', 1.1, xp("W4"), _x),
    ]


def _met(limit, v):
    if isinstance(v, tuple):
        return v[1] == v[2]
    return v <= limit


def table(runs, md_table):
    """The goal table: one column per setting in ``runs`` ({setting: raw}), then the status
    (met only when met in every setting that measured it)."""
    names = list(runs)
    rows = []
    for text, limit, value, shown in goals():
        cells, status = [], []
        for name in names:
            try:
                v = value(runs[name])
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                v = None
            cells.append("—" if v is None else shown(v))
            if v is not None:
                status.append(_met(limit, v))
        ok = "n/a" if not status else ("met" if all(status) else "**not met**")
        rows.append([text] + cells + [ok])
    return md_table(["goal (issues 17, 18)"] + names + ["status"], rows)
