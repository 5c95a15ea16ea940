"""Stand-alone benchmark scripts registered as sections of benchmarks/run.py.

Each module named here has ``HEADER`` (the table's column names) and
``section(quick, log) -> (rows, raw)``; ``run.py --only KEY`` runs it and adds a
``## TITLE`` table to the report (``raw`` goes to latest.json under ``KEY``).
"""
from __future__ import annotations

import importlib

#: {key: (module, title, note)}
SECTIONS = {
    "hessian": ("benchmarks.hessian", "Hessian (graphc.hessian)",
                "The full 100 x 100 Hessian of a logistic regression's mean loss (forward over "
                "reverse), against the closed form by hand and peers; median ms per call."),
    "per_example": ("benchmarks.per_example", "Per-example gradients (graphc.vmap(graphc.grad))",
                    "128 gradients of the W2 MLP, one per example: one batched function, a "
                    "Python loop of graphc.grad, torch.func; median ms per call."),
    "checkpoint": ("benchmarks.checkpoint", "Checkpointing (graphc.checkpoint)",
                   "value_and_grad with blocks wrapped in graphc.checkpoint. Peak memory: "
                   "tracemalloc peak of one call (min of 3); kept for backward / recomputed "
                   "values / FLOPs: graph.cost() (saved_bytes, recomputed_bytes, "
                   "recomputed_flops); time: median, variants interleaved."),
    "dask": ("benchmarks.dask_dp", "Data parallel on Dask (graphc.dask.value_and_grad)",
             "The MLP 784-256-128-10 gradient (mean cross-entropy, float32) on a LocalCluster of "
             "2 single-threaded workers against one process with BLAS's default threads, "
             "interleaved; the two results are checked equal first. On a machine with 2 cores "
             "the one process already uses both, so a speed-up needs more cores (issue 17)."),
}


def add_sections(only, quick, log, parts, raw, md_table):
    """Run the registered sections named in ``only``; append their tables to ``parts``."""
    for key, (module, title, note) in SECTIONS.items():
        if key not in only:
            continue
        mod = importlib.import_module(module)
        log(f"section {key}")
        rows, raw[key] = mod.section(quick, log)
        parts += [f"## {title}", "", note, "", md_table(mod.HEADER, rows), ""]
