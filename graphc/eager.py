"""Eager evaluation: a primitive applied to concrete arrays.

Each primitive's NumPy function is compiled from the very emission text the
code generator writes, so eager evaluation and generated code cannot disagree.
Installed as the primitives' implementation builder at import.
"""
from __future__ import annotations

import re

import numpy as np

from . import primitive
from .avals import aval_of

__all__ = ["compile_snippet", "cached_snippets"]


def compile_snippet(prim, params):
    """An eager implementation of ``prim`` compiled from its emission text."""
    n = _arity(prim, params)
    names = [f"a{i}" for i in range(n)]
    avals = [None] * n
    emitted = prim.emit(names, "out", avals, None, params) if not callable(prim.numpy) \
        else None
    if emitted is None:
        # Callable emitters may look at the input avals (reductions, scatter):
        # emit per call, and cache the compiled text in _SNIPPETS.
        def impl(*args):
            vals = [a if isinstance(a, (int, float, bool)) else np.asarray(a) for a in args]
            av = [aval_of(v) for v in vals]
            out_aval = prim.shape(*av, **params)
            text = prim.emit([f"a{i}" for i in range(len(vals))], "out", av, out_aval, params)
            fn = _snippet_fn(text, len(vals))
            return fn(*vals)
        return impl
    return _snippet_fn(emitted, n)


_SNIPPETS: dict = {}


def _snippet_fn(emitted, n):
    lines = [f"out = {emitted}"] if isinstance(emitted, str) else list(emitted)
    key = (tuple(lines), n)
    fn = _SNIPPETS.get(key)
    if fn is None:
        args = ", ".join(f"a{i}" for i in range(n))
        src = f"def _impl({args}):\n" + "".join(f"    {line}\n" for line in lines) + "    return out\n"
        ns = {"np": np}
        exec(compile(src, "<graphc:eager>", "exec"), ns)
        if len(_SNIPPETS) >= 256:   # keyed by text that holds shapes: bound it (no leak)
            _SNIPPETS.clear()
        fn = _SNIPPETS[key] = ns["_impl"]
    return fn


def cached_snippets() -> int:
    """How many compiled snippets are cached (bounded: the cache never leaks)."""
    return len(_SNIPPETS)


def _arity(prim, params):
    if callable(prim.numpy):
        return -1
    return len(set(re.findall(r"\{(\d+)\}", prim.numpy)))


primitive.set_impl_builder(compile_snippet)
