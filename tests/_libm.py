"""Whether this machine's C library computes NumPy's float64 functions bit for bit.

graphc runs Python-float code with ``math`` only where every op gives NumPy's result bit
for bit (graphc/scalar_agreement.py ``agrees``, checked once per process).  On CPUs with
AVX-512, NumPy's SIMD ``exp``, ``log``, ... differ from glibc's by an ulp on some inputs,
so there the Python-float code calls NumPy's own function on the float for those ops
(``scalar_agreement.scalar_form``), inside a range where it warns nothing; an op with neither
keeps NumPy's code, and a graph with one such op imports no ``math``.  Tests that look at
the generated text or the floats-only call path expect whichever this machine gets; the
values are compared with NumPy's on every machine.
"""
from graphc import scalar_agreement


def agree(*ops):
    """Each of ``ops`` has a Python-float form here (``math``'s or NumPy's function)."""
    return all(scalar_agreement.scalar_form(op) is not None for op in ops)


#: tests/functions.py's lecture function (and its derivatives) run with ``math`` here
LECTURE = agree("add", "sub", "mul", "div", "neg", "sin", "cos", "exp")
REASON = ("NumPy's float64 sin/cos/exp differ from the C library's on this CPU and NumPy's "
          "own function warns inside their quiet ranges: graphc keeps NumPy's code for "
          "Python floats, no `math` variant to test")


def math_imports():
    """The generated lecture module's imports on this machine."""
    return (["import math"] if LECTURE else []) + ["import numpy as np"]
