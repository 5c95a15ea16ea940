"""Python text for constant values: literals in generated code, labels, proofs.

One place that spells a value as code: graph constants (:func:`const_text`),
parameter defaults (:func:`default_text`) and the non-finite names NumPy needs
(``np.inf``, ``np.nan``).  Used by the code generator, the interpreter's
messages and the symbolic checker (which reads multiples of pi back).
"""
from __future__ import annotations

import numpy as np

from .primitive import Aval

__all__ = ["const_text", "tree_text", "pi_text", "default_text", "nonfinite_text",
           "holds_array"]

_BIG_CONST = 64  # elements: larger array constants are written as hex bytes


def _scalar_text(v, dtype, weak):
    if dtype.kind == "f" and dtype.itemsize > 8:
        # longdouble: a Python float literal would round it to float64.  str() is
        # NumPy's shortest round-tripping text, which np.longdouble parses exactly.
        v = np.longdouble(v)
        if np.isfinite(v) and np.longdouble(float(v)) != v:
            return f"np.longdouble({str(v)!r})"
    v = v.item() if hasattr(v, "item") else v
    if dtype.kind == "b":
        text = repr(bool(v))
    elif dtype.kind in "iu":
        text = repr(int(v))
    else:
        v = float(v)
        text = pi_text(v) or repr(v)
        if text in ("inf", "-inf", "nan"):
            text = {"inf": "np.inf", "-inf": "-np.inf", "nan": "np.nan"}[text]
    if weak:
        return text
    return f"np.{dtype.name}({text})"


def pi_text(v):
    if v == 0 or not np.isfinite(v) or abs(v) > 13 * np.pi:   # (k * den overflows near 1e308)
        return None
    k = v / np.pi
    for den in (1, 2, 3, 4, 6):
        num = round(k * den)
        if num and num * np.pi / den == v and abs(num) <= 12:
            text = "np.pi" if num == 1 else ("-np.pi" if num == -1 else f"{num} * np.pi")
            return text if den == 1 else f"{text} / {den}"
    return None


def const_text(value, aval: Aval):
    """Python expression that rebuilds a constant exactly."""
    if aval.shape == ():
        return _scalar_text(value, aval.dtype, aval.weak)
    arr = np.asarray(value, dtype=aval.dtype)
    dt = f"np.{arr.dtype.name}"
    if arr.ndim == 1 and arr.dtype.kind in "iu" and np.array_equal(arr, np.arange(arr.size)):
        return f"np.arange({arr.size})" + ("" if arr.dtype == np.int64 else f".astype({dt})")
    if arr.size == 0:           # np.array([]) would lose a shape like (0, 3)
        return f"np.zeros({arr.shape!r}, dtype={dt})"
    flat = arr.ravel()
    # uniform: all equal, and for floats not nan and with one sign ([0., -0.] is not zeros)
    if flat.size and np.all(flat == flat[0]) and not np.isnan(flat[0]) \
            and np.all(np.signbit(flat) == np.signbit(flat[0])) if arr.dtype.kind == "f" \
            else (flat.size and np.all(flat == flat[0])):
        v = flat[0]
        if v == 0 and not (arr.dtype.kind == "f" and np.signbit(v)):
            return f"np.zeros({arr.shape!r}, dtype={dt})"
        if v == 1:
            return f"np.ones({arr.shape!r}, dtype={dt})"
        return f"np.full({arr.shape!r}, {_scalar_text(v, arr.dtype, True)}, dtype={dt})"
    if _is_eye(arr):            # an identity (a Jacobian's seed): no n^2 numbers in the text
        n = arr.shape[0]
        return f"np.eye({n}, dtype={dt})" + ("" if arr.ndim == 2 else f".reshape({arr.shape!r})")
    if arr.size <= _BIG_CONST and arr.dtype.kind in "biuf" and np.all(np.isfinite(arr)):
        return f"np.array({arr.tolist()!r}, dtype={dt})"
    data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes().hex()
    return f"np.frombuffer(bytes.fromhex({data!r}), dtype={np.dtype(arr.dtype).newbyteorder('<').str!r}).reshape({arr.shape!r}).astype({dt})"


def _is_eye(arr) -> bool:
    """``arr`` is ``np.eye(n)`` (n >= 2), possibly reshaped to ``(n,) + shape``, with +0 zeros."""
    n = arr.shape[0] if arr.ndim >= 2 else 0
    if n < 2 or arr.size != n * n or arr.dtype.kind not in "iuf":
        return False
    flat = arr.reshape(n, n)
    return bool(np.array_equal(flat, np.eye(n, dtype=arr.dtype))
                and not (arr.dtype.kind == "f" and np.signbit(flat).any()))


def default_text(value):
    """Python text that rebuilds a default argument value (arrays exactly)."""
    if isinstance(value, float) and not isinstance(value, np.generic) and not np.isfinite(value):
        return nonfinite_text(value)
    if value is None:
        return "None"
    # Subclasses (IntEnum, a str with a custom __repr__) are written as the plain
    # value: only int/float/str's own reprs become code.
    for base in (bool, int, float, str):
        if isinstance(value, base) and not isinstance(value, np.generic):
            return base.__repr__(base(value))
    if isinstance(value, np.dtype) and value.kind in "biufc":
        return f"np.dtype({value.name!r})"
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        text = const_text(arr, Aval(arr.shape, arr.dtype, False))
        if isinstance(value, np.ndarray):
            return text
        item = arr.item()
        item = nonfinite_text(item) if isinstance(item, float) and not np.isfinite(item) \
            else repr(item)
        return f"np.{arr.dtype.name}({item})"
    if isinstance(value, range):
        return f"range({int(value.start)}, {int(value.stop)}, {int(value.step)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{default_text(k)}: {default_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(default_text(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(default_text(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if value is np:
        return "np"
    name = getattr(value, "__name__", None)
    if isinstance(name, str) and name.isidentifier() and getattr(np, name, None) is value:
        return f"np.{name}"         # act=np.tanh
    # Any other static default (a function, a module): its value is baked into
    # the graph, so the generated function never reads the parameter.
    return "None"


def nonfinite_text(value: float) -> str:
    """``np.nan``/``np.inf``/``-np.inf``: repr() gives ``nan``, which is no Python name."""
    if np.isnan(value):
        return "np.nan"
    return "np.inf" if value > 0 else "-np.inf"


def holds_array(value) -> bool:
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, dict):
        return any(holds_array(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_array(v) for v in value)
    return False


def tree_text(t, it, top=False):
    """The expression that rebuilds pytree ``t`` from the leaf expressions in ``it``
    (static leaves as their repr, which capture.py limits to plain values)."""
    if t.kind == "leaf":
        return next(it)
    if t.kind == "static":
        return repr(t.static)
    if t.kind == "none":
        return "None"
    kids = [tree_text(c, it) for c in t.children]
    if t.kind == "dict":
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(t.keys, kids)) + "}"
    if t.kind == "list":
        return "[" + ", ".join(kids) + "]"
    if top and kids:
        return ", ".join(kids) + ("," if len(kids) == 1 else "")
    return "(" + ", ".join(kids) + ("," if len(kids) == 1 else "") + ")"
