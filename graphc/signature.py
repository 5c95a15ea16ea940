"""How a traced function's arguments and results map onto graph inputs and outputs."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from .pytree import TreeDef

_EMPTY = inspect.Parameter.empty


@dataclass
class Param:
    name: str
    kind: inspect._ParameterKind
    default: object = _EMPTY


@dataclass
class Signature:
    """The calling convention of one traced signature.

    ``leaf_paths[i]`` is ``(param_index, key, key, ...)`` locating traced leaf
    ``i``, whose graph input is ``graph.inputs[i]``.  ``out_treedef`` rebuilds
    the result from ``graph.outputs``.
    """

    fn_name: str
    params: list
    arg_treedefs: tuple
    leaf_paths: list
    out_treedef: TreeDef = None
    # Closed-over NumPy arrays read as inputs (API.md section 1: read at each call):
    # (node id, variable name, cell).  Their nodes are "input" nodes outside
    # graph.inputs that carry the value seen at trace time as "value".
    closures: list = field(default_factory=list)


def leaf_access(sig: Signature, path) -> str:
    """Python expression for a leaf inside the generated function's arguments."""
    text = sig.params[path[0]].name
    for k in path[1:]:
        text += f"[{k!r}]"
    return text


def leaf_name(sig: Signature, path) -> str:
    """A readable base name for a leaf: the dict key, or param_index."""
    param = sig.params[path[0]].name
    if len(path) == 1:
        return param
    keys = path[1:]
    if all(isinstance(k, str) for k in keys):
        # params["W1"] -> W1, state["m"]["W1"] -> m_W1; a tangent (graphc.jvp's dot_params)
        # dot_W1, a cotangent (graphc.vjp's d_out) d_W1
        prefix = next((p for p in ("dot_", "d_") if param.startswith(p)), "")
        return prefix + "_".join(keys)
    return param + "_" + "_".join(str(k) for k in keys)


def from_function(fn, args, kwargs):
    """Bind ``args``/``kwargs`` to ``fn``'s parameters, in parameter order.

    Returns ``(params, values)`` where ``values[i]`` is the value of
    ``params[i]`` (defaults applied; ``*args`` as a tuple, ``**kw`` as a dict).
    """
    base = inspect.unwrap(fn)           # graphc.grad(np.sin) wraps np.sin
    if isinstance(base, np.ufunc) and not kwargs:
        # A ufunc's signature lists out=, dtype=, signature=... with defaults that
        # NumPy refuses when passed back together: bind its inputs only.
        names = ["x"] if base.nin == 1 else [f"x{i + 1}" for i in range(base.nin)]
        if len(args) == base.nin:
            return [Param(n, inspect.Parameter.POSITIONAL_ONLY) for n in names], list(args)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        params = [Param(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(args))]
        return params, list(args)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as e:
        from .errors import SignatureError
        name = getattr(fn, "__name__", None) or type(fn).__name__
        raise SignatureError(
            f"{name}() cannot be called with these arguments: {e}",
            hint=f"call it as {name}{sig}; every call may change shapes, dtypes and pytree "
                 "structure (graphc re-traces), but must fit the Python signature") from None
    bound.apply_defaults()
    params, values, skipped = [], [], False
    for p in sig.parameters.values():
        if p.default is np._NoValue and bound.arguments[p.name] is np._NoValue:
            skipped = True  # NumPy's "not given" (np.sum's keepdims=): left to fn, not passed
            continue
        kind = p.kind
        if skipped and kind == inspect.Parameter.POSITIONAL_OR_KEYWORD:
            kind = inspect.Parameter.KEYWORD_ONLY       # (by name: a position was skipped)
        params.append(Param(p.name, kind, p.default))
        values.append(bound.arguments[p.name])
    return params, values
