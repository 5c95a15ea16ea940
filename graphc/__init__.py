"""graphc: a symbolic computation-graph compiler for Python.

Trace ordinary NumPy functions into a graph, differentiate it in reverse
mode, and compile forward and backward passes into readable NumPy source.

Examples
--------
>>> import numpy as np, graphc
>>> def f(w1, w2):
...     return w1 / w2 + np.exp(2 * w2)
>>> df = graphc.grad(f, argnums=(0, 1))
>>> [round(float(v), 6) for v in df(1.5, 0.5)]
[2.0, -0.563436]
"""
from . import eager as _eager, numpy_api as _numpy_api  # noqa: F401  (install eager evaluation, bind and NumPy on tracers)
from . import ops as _ops  # noqa: F401  (registers every primitive)
from . import updates as _updates  # noqa: F401  (writes into traced arrays, view tracking)
from . import guards as _guards  # noqa: F401  (Python control flow on traced values: guards)
from . import codegen as _codegen, cost as _cost, draw as _draw  # noqa: F401  (Graph's products)
from . import nn, optim
from .control import emit as _control_emit  # noqa: F401  (loops' code, evaluation, cost)
from .control import tangents as _control_tangents  # noqa: F401  (loops' forward mode)
from .control.scan import fori_loop, scan
from .control.while_ import while_loop
from .control.branches import cond, switch
from .api import (Compiled, Spec, compile, example, export, grad, render, scope, trace,
                  value_and_grad)
from .check import CheckReport, CheckRow, check
from .errors import (ControlFlowError, EscapedTracerError, ExportError, GradError, GraphcError,
                     GraphcWarning, InPlaceError, NonFiniteError, OptionError, RenderError,
                     RenderPathError, ShapeError, SignatureError, TracingError, UnsupportedError)
from .ir import Graph
from .trace_table import TraceRow, TraceTable
from .jvp_vjp import jvp, vjp
from .second_order import hvp, stop_gradient
from .vmap import vmap
from .jacobians import jacobian, jacrev, jacfwd, hessian
from .custom import checkpoint, custom_jvp, custom_vjp
from .report import report

__version__ = "0.1.0"


def __getattr__(name):
    # graphc.dask (data parallel on Dask) is imported on first use: `import graphc`
    # imports no Dask.
    if name == "dask":
        import importlib
        return importlib.import_module(".dask", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["nn", "optim", "check", "CheckReport", "CheckRow", "render", "scope", "trace", "grad", "value_and_grad", "jvp", "vjp", "hvp", "stop_gradient", "vmap", "jacobian", "jacrev", "jacfwd", "hessian", "custom_vjp", "custom_jvp", "checkpoint", "compile", "export", "Spec", "example", "Graph",
           "TraceTable", "TraceRow",
           "scan", "fori_loop", "while_loop", "cond", "switch",
           "Compiled", "GraphcError", "TracingError", "ControlFlowError", "InPlaceError",
           "UnsupportedError", "ShapeError", "GradError", "EscapedTracerError", "ExportError",
           "NonFiniteError", "OptionError", "RenderError", "RenderPathError", "SignatureError", "GraphcWarning",
           "report"]
