"""The call's arguments with one leaf replaced, for :func:`graphc.check`'s finite differences."""
from __future__ import annotations

import copy

import numpy as np

__all__ = ["replace_leaf"]


def replace_leaf(subject, path, new):
    """The call's ``(args, kwargs)`` with the leaf at ``path`` (param index, keys...) replaced."""
    from .capture import call_parts as _call_parts
    from .signature import from_function
    params, values = from_function(subject.fn, subject.args, subject.kwargs)
    values = list(values)
    values[path[0]] = _replaced(values[path[0]], path[1:], new)
    return _call_parts(params, values)


def _replaced(tree, path, new):
    """A copy of ``tree`` with the leaf at ``path`` replaced (tuples are rebuilt, not assigned)."""
    if not path:
        if isinstance(tree, np.ndarray):
            return new.astype(tree.dtype)
        if isinstance(tree, np.generic):
            return tree.dtype.type(new)
        return float(new)
    key, rest = path[0], path[1:]
    if isinstance(tree, tuple):
        return tuple(_replaced(v, rest, new) if j == key else v for j, v in enumerate(tree))
    out = copy.copy(tree)          # a dict or a list: a shallow copy, the leaf replaced
    out[key] = _replaced(tree[key], rest, new)
    return out
