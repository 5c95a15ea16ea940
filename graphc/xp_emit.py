"""A primitive's emission for the ``"array-api"`` target.

A record's ``array_api`` field gives its form against ``xp`` (the array
namespace the generated function resolves at entry); when it is None the form
is derived from the NumPy template when that is safe: a template made only of
operators (``{0} + {1}``) is the same text, and one whose every call is
``np.NAME(...)`` with NAME a function of the standard (2024.12) under the same
name becomes ``xp.NAME(...)``.  Anything else (methods, ``np.linalg``,
renamed functions, statements) needs an explicit ``array_api=`` in the record;
without one the op has no array-API form and compiling it for that target is a
clear :class:`~graphc.errors.UnsupportedError`.
"""
from __future__ import annotations

import re

import numpy as np

from .precedence import ATOM, prec_of, wrap
from .primitive import Emit, Primitive

__all__ = ["STANDARD_FUNCTIONS", "xp_form", "has_xp_form", "emit_xp", "xp_param_text",
           "xp_dtype"]

#: Elementwise and other functions the array API standard (2024.12) has under
#: NumPy's own name (so ``np.NAME`` in a template may become ``xp.NAME``).
STANDARD_FUNCTIONS = frozenset("""
abs ceil cos cosh exp expm1 floor log log10 log1p log2 logaddexp sign sin sinh
sqrt tan tanh trunc isfinite isinf isnan logical_and logical_not logical_or
logical_xor maximum minimum where broadcast_to hypot
""".split())

_CALL = re.compile(r"\bnp\.([A-Za-z_][A-Za-z_0-9.]*)\s*\(")


def xp_form(prim: Primitive):
    """The record's array-API emission (template text or callable), or None."""
    if prim.array_api is not None:
        return prim.array_api
    tmpl = prim.numpy
    if callable(tmpl):
        return None
    if "np." not in tmpl:
        return tmpl if "." not in tmpl.replace("{", "").replace("}", "") else None
    names = _CALL.findall(tmpl)
    if len(names) != tmpl.count("np.") or not all(n in STANDARD_FUNCTIONS for n in names):
        return None
    return tmpl.replace("np.", "xp.")


def has_xp_form(prim: Primitive) -> bool:
    return xp_form(prim) is not None


def xp_dtype(dtype) -> str:
    """``xp.float32`` for a NumPy dtype (``bool`` is ``xp.bool``)."""
    return f"xp.{np.dtype(dtype).name}"


def xp_param_text(v) -> str:
    """A static param as text of array-API code (dtypes as ``xp.<name>``)."""
    if isinstance(v, np.dtype) or isinstance(v, type) and issubclass(v, np.generic):
        return xp_dtype(v)
    from .primitive import _param_text
    return _param_text(v)


def emit_xp(prim: Primitive, args, out, avals, aval, params, atoms=None):
    """``(text or statements, precedence)`` of the op's array-API form."""
    form = xp_form(prim)
    if callable(form):
        if atoms is None:
            atoms = [wrap(a, ATOM) for a in args]
        got = form(Emit(args, out, avals, aval, atoms), **params)
        return got, (prec_of(got) if isinstance(got, str) else ATOM)
    text = form.format(*args, **{k: xp_param_text(v) for k, v in params.items()})
    return text, prec_of(text)
