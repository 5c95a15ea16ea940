"""Which NumPy callable is implemented by which graphc function: the registration table.

Composites and records register their NumPy spelling next to their definition with
:func:`implements`, so a new NumPy function is one decorated function in its family
module (no second file to touch); :mod:`graphc.numpy_api` installs the table on the
tracer.  Implementations take NumPy's own signature (positional order, keyword names,
defaults): ``tests/test_numpy_fidelity.py`` compares them with ``inspect.signature``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

__all__ = ["UFUNCS", "FUNCTIONS", "METHODS", "SAMPLES", "Call", "implements"]

UFUNCS: dict = {}     # np.ufunc -> fn(*inputs) (dtype=/out= are handled by numpy_api)
FUNCTIONS: dict = {}  # NumPy function (np.cumsum, np.linalg.norm) -> fn with NumPy's signature
METHODS: dict = {}    # ndarray method name ("cumsum") -> fn(self, ...) with NumPy's signature
SAMPLES: dict = {}    # NumPy callable or method name -> samples(draw) -> list of Call


@dataclass
class Call:
    """One call of a NumPy function for the table-driven tests (tests/test_numpy_functions.py).

    ``args`` are arrays (traced when float or integer arrays), Python ints/floats/tuples
    (Python ints and tuples are static); ``kwargs`` are static keywords.  The test runs
    NumPy itself as the reference: values, dtype and shape must match, and for ``grad``
    the gradient of every float64 argument must match central finite differences.
    """

    args: tuple
    kwargs: dict = field(default_factory=dict)
    desc: str = ""
    grad: bool = True


def implements(*numpy_callables, methods=(), samples=None) -> Callable:
    """Register the decorated function as graphc's implementation of NumPy callables.

    Parameters
    ----------
    *numpy_callables : NumPy ufuncs or functions
        Each gets the decorated function (ufuncs are called with the inputs only).
    methods : tuple of str
        ndarray method names it also implements (called with the array first).
    samples : callable, optional
        ``samples(draw) -> list of Call`` (``draw`` is a seeded ``ops._samples.Draw``):
        the calls the table-driven tests check against NumPy, for each NumPy callable
        and method named here.

    Examples
    --------
    graphc/ops/flips.py registers ``np.flip`` this way::

        @implements(np.flip, samples=...)
        def flip(m, axis=None): ...

    >>> import numpy as np
    >>> import graphc
    >>> from graphc.ops._numpy_table import FUNCTIONS
    >>> FUNCTIONS[np.flip].__module__
    'graphc.ops.flips'
    """
    import numpy as np

    def register(fn):
        for f in numpy_callables:
            table = UFUNCS if isinstance(f, np.ufunc) else FUNCTIONS
            if f in table:
                raise ValueError(f"{getattr(f, '__name__', f)} is implemented twice")
            table[f] = fn
            if samples is not None:
                SAMPLES[f] = samples
        for name in methods:
            if name in METHODS:
                raise ValueError(f"ndarray method {name!r} is implemented twice")
            METHODS[name] = fn
            if samples is not None:
                SAMPLES[name] = samples
        return fn
    return register
