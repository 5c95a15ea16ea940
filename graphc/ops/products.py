"""Products and matrix helpers with NumPy's semantics, as composites of primitives."""
from __future__ import annotations
