"""Pytrees: nested dict / list / tuple / None containers of leaves.

A :class:`TreeDef` records the structure (dict keys in the user's insertion
order) and the values of static leaves (Python ``int``, ``bool``, ``str``),
so two calls share a compiled function exactly when their treedefs are equal
and their traced leaves have the same shapes and dtypes.
"""
from __future__ import annotations

import functools
import types
from dataclasses import dataclass

import numpy as np

__all__ = ["TreeDef", "flatten", "unflatten", "is_static", "LEAF"]


@dataclass(frozen=True)
class TreeDef:
    kind: str                 # "leaf", "static", "none", "dict", "list", "tuple"
    children: tuple = ()
    keys: tuple = ()          # dict keys
    static: object = None     # value of a static leaf

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __repr__(self):
        if self.kind == "leaf":
            return "*"
        if self.kind == "static":
            return repr(self.static)
        if self.kind == "none":
            return "None"
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {c!r}" for k, c in zip(self.keys, self.children)) + "}"
        inner = ", ".join(repr(c) for c in self.children)
        return f"[{inner}]" if self.kind == "list" else f"({inner}{',' if len(self.children) == 1 else ''})"


LEAF = TreeDef("leaf")
_NONE = TreeDef("none")


def is_static(x) -> bool:
    """Python ``int``/``bool``/``str`` (and ``None``) are static: baked into the graph.

    So are functions, modules, classes, ``range`` objects and dtypes
    (``act=np.tanh``, ``xp=np``, ``dtype=np.float32``): they are never traced,
    and a call with another one re-traces.
    """
    return x is None or isinstance(x, (bool, int, str)) and not isinstance(x, np.generic) \
        or isinstance(x, _STATIC_OBJECTS)


# Objects that are static by what they are (compared by identity, or by value
# for range and dtype).  Other objects (a model instance with array attributes)
# are not: baking them in would freeze their arrays into the graph.
_STATIC_OBJECTS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                   types.ModuleType, type, range, np.ufunc, np.dtype, functools.partial)


def flatten(tree, path=()):
    """Return ``(leaves, treedef, paths)``; ``paths[i]`` locates ``leaves[i]``."""
    leaves, paths = [], []
    try:
        tdef = _flatten(tree, path, leaves, paths)
    except _TooDeep:
        pass
    else:
        return leaves, tdef, paths
    _too_deep()     # raised here, outside the handler: a short traceback


class _TooDeep(Exception):
    pass


#: Deepest nesting of containers in an argument or result (Python's recursion
#: limit would otherwise end a deeper one, or a list that contains itself).
MAX_DEPTH = 100


def _flatten(x, path, leaves, paths):
    if x is None:
        return _NONE
    if len(path) > MAX_DEPTH and isinstance(x, (dict, list, tuple)):
        raise _TooDeep
    if isinstance(x, dict):
        keys = tuple(x.keys())
        for k in keys:
            if not _literal_key(k):
                _bad_key(k, path)
        return TreeDef("dict", tuple(_flatten(x[k], path + (k,), leaves, paths) for k in keys), keys)
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        kind = "list" if isinstance(x, list) else "tuple"
        return TreeDef(kind, tuple(_flatten(v, path + (i,), leaves, paths) for i, v in enumerate(x)))
    if is_static(x):
        return TreeDef("static", static=x)
    leaves.append(x)
    paths.append(path)
    return LEAF


# Dict keys are written into generated code with repr() (params["W1"]), so
# only types whose repr is a plain literal are allowed: a key object with a
# custom __repr__ (or a str subclass) would otherwise become code.
_KEY_TYPES = (str, int, bool, float, type(None), np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)


def _literal_key(k) -> bool:
    t = type(k)
    if t is tuple:
        return all(_literal_key(v) for v in k)
    if t is float or t is np.float64:
        return bool(np.isfinite(k))    # repr(nan) is not a literal
    return t in _KEY_TYPES


def _bad_key(k, path):
    from .errors import UnsupportedError
    raise UnsupportedError(
        f"a dict key of type {type(k).__name__} ({k!r:.40}) in an argument or result cannot be "
        "used: generated code spells dict keys as Python literals",
        hint="use str or int dict keys (e.g. str(key))")


def _too_deep():
    from .errors import UnsupportedError
    raise UnsupportedError(
        f"an argument or result nests containers (dict/list/tuple) more than {MAX_DEPTH} "
        "levels deep (or contains itself)",
        hint="flatten the structure: a list or dict of arrays, or np.stack the arrays into "
             "one array")


def unflatten(tdef: TreeDef, leaves):
    """Inverse of :func:`flatten`."""
    it = iter(leaves)
    out = _unflatten(tdef, it)
    return out


def _unflatten(t, it):
    if t.kind == "leaf":
        return next(it)
    if t.kind == "static":
        return t.static
    if t.kind == "none":
        return None
    kids = [_unflatten(c, it) for c in t.children]
    if t.kind == "dict":
        return dict(zip(t.keys, kids))
    return kids if t.kind == "list" else tuple(kids)


def tree_map(fn, tree, *rest):
    """Apply ``fn`` leaf-wise over pytrees of the same structure.

    Examples
    --------
    >>> tree_map(lambda a, b: a + b, {"w": 1.0, "b": [2.0]}, {"w": 10.0, "b": [20.0]})
    {'w': 11.0, 'b': [22.0]}
    """
    leaves, tdef, _ = flatten(tree)
    others = []
    for r in rest:
        rl, rdef, _ = flatten(r)
        if rdef != tdef:
            from .errors import ShapeError
            raise ShapeError(f"pytree structures differ: {tdef!r} vs {rdef!r}")
        others.append(rl)
    return unflatten(tdef, [fn(*xs) for xs in zip(leaves, *others)])
