"""Shared pytest configuration for graphc's tests (kept minimal)."""
import os
import sys

# Before graphc is imported: package code must read nodes as typed Nodes, never as mappings
# (graphc/ir.py), and every pass must leave a valid graph (Graph.check after each).
os.environ.setdefault("GRAPHC_STRICT_NODES", "1")
os.environ.setdefault("GRAPHC_DEBUG", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Make the helper modules in tests/ (e.g. _fd.py) importable however pytest is run.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def libm_agrees(monkeypatch):
    """Generated text as on a machine whose C library gives NumPy's float64 functions bit
    for bit (tests/_libm.py): golden files must not depend on the CPU they are checked on.
    Only for tests that compare text, never values."""
    from graphc import codegen_scalar, jvp_vjp
    monkeypatch.setattr(codegen_scalar, "agrees", lambda op, samples=0: True)
    jvp_vjp._cached.cache_clear()      # graphc.jvp(f) keeps what it compiled before
    yield
    jvp_vjp._cached.cache_clear()


@pytest.fixture
def rng():
    """A fresh, fixed-seed random generator for each test."""
    return np.random.default_rng(0)
