"""Optional peer frameworks: PyTorch, JAX and HIPS autograd, each imported best-effort.

Every accessor returns the module, or ``None`` when it is not installed (or fails to
import); the harness then prints "n/a" in that column.
"""
from __future__ import annotations

import os

_cache: dict = {}


def _load(name, loader):
    if name not in _cache:
        try:
            _cache[name] = loader()
        except Exception as e:  # ImportError, or a broken install
            _cache[name] = None
            _cache[name + ".error"] = f"{type(e).__name__}: {e}"
    return _cache[name]


def torch():
    def load():
        import torch as t
        return t
    return _load("torch", load)


def jax():
    """``jax`` on the CPU, with float64 enabled (W1 is float64; float32 inputs stay float32)."""
    def load():
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax as j
        j.config.update("jax_enable_x64", True)
        return j
    return _load("jax", load)


def autograd():
    def load():
        import autograd as a
        import autograd.numpy  # noqa: F401  (fail here, not mid-benchmark)
        return a
    return _load("autograd", load)


def error(name):
    """Why a peer is missing (for the report), or None."""
    return _cache.get(name + ".error")
