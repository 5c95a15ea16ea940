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
    from graphc import jvp_vjp, scalar_agreement
    monkeypatch.setattr(scalar_agreement, "agrees", lambda op, samples=0: True)
    jvp_vjp._cached.cache_clear()      # graphc.jvp(f) keeps what it compiled before
    yield
    jvp_vjp._cached.cache_clear()


@pytest.fixture
def rng():
    """A fresh, fixed-seed random generator for each test."""
    return np.random.default_rng(0)


@pytest.fixture
def as_users_build(monkeypatch):
    """For compile-time tests: the build users get, without GRAPHC_DEBUG's graph checks
    after every pass (set above), which were 0.6 of 1.0 s of the passes on a 600-step
    chain and, late in the suite, read 6.8x for 4x the nodes (memory, not the algorithm)."""
    from graphc import ir
    monkeypatch.setattr(ir, "DEBUG", False)
