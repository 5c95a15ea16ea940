"""What tracing folds away as it records: constants too large to fold, uniform arrays, and
the unit operands of ``x * 1``, ``x + 0``, ``x / 1`` (the record's ``identities``)."""
from __future__ import annotations

import numpy as np

__all__ = ["FOLD_LIMIT", "uniform", "is_unit", "unit_operand", "fold_constants"]

FOLD_LIMIT = 1 << 20
_SCALARS = (int, float, bool)


def uniform(value) -> bool:
    """All entries equal, signed zeros included ([0., -0., 0.] is not uniform)."""
    flat = np.asarray(value).ravel()
    if flat.size == 0 or not np.all(flat == flat[0]):
        return False
    return flat.dtype.kind != "f" or bool(np.all(np.signbit(flat) == np.signbit(flat[0])))


def is_unit(value, unit, dtype) -> bool:
    """``value`` (a scalar or a uniform array) is ``unit``, with its sign for a zero:
    -0.0 + 0.0 is +0.0, so ``x + 0.0`` is not ``x``, while ``x + -0.0`` and ``x - 0.0`` are."""
    if type(value) in _SCALARS and value != unit:
        return False                  # (a Python scalar: no array for the common case)
    first = np.ravel(value)[0]
    if first != unit:
        return False
    return np.dtype(dtype).kind != "f" or bool(np.signbit(first) == np.signbit(unit))


def unit_operand(prim, g, nids, aval):
    """Index of the operand ``x`` when the op is ``x * 1``, ``x + 0``, ``x / 1`` ..."""
    for i, unit in enumerate(prim.identities):
        if unit is None:
            continue
        node = g[nids[i]]
        if node.op != "const":
            continue
        value = node.value
        # a scalar, or a uniform array (a folded broadcast of the seed: np.ones(...))
        if type(value) not in _SCALARS and np.ndim(value) != 0 and (
                np.size(value) > FOLD_LIMIT or not uniform(value)):
            continue
        if not is_unit(value, unit, aval.dtype):
            continue
        other = g[nids[1 - i]]
        if other.shape == aval.shape and other.dtype == aval.dtype and other.weak == aval.weak:
            return 1 - i
    return None


def fold_constants(trace, prim, params, nids, aval, where):
    """``prim`` applied to the constant nodes ``nids``, folded into one literal node of
    ``trace`` (its tracer), or None when the result would not print small."""
    if aval.size > FOLD_LIMIT:
        return None
    g = trace.graph
    # Constant folding at build time keeps rule-generated graphs small
    # (`y - 1` for a constant exponent becomes one literal).  Only results
    # that print small (scalars, uniform arrays as np.full): folding
    # anything else would bake a large array into the code.
    value = prim.impl(params)(*[g[n].value for n in nids])
    if aval.size <= 1 or uniform(value):
        if aval.weak:
            value = value.item() if hasattr(value, "item") else value
        nid = g.add_const(value if aval.weak else np.array(value, dtype=aval.dtype),
                          weak=aval.weak, where=where, **trace._const_attrs())
        return trace.tracer(nid)
    return None
