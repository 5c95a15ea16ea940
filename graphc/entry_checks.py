"""The entry check written into every generated module.

Generated code is specialized to shapes, dtypes and static values; called with
others it would compute something else without a word.  Each argument is
compared with what the code was generated for, once, at entry (one comparison
per argument).  The helpers are written into every module: it imports only NumPy.
"""
from __future__ import annotations

import numpy as np

from .naming import sanitize
from .pytree import LEAF as _LEAF

__all__ = ["ENTRY_HELPERS", "entry_checks", "signature_text"]


def signature_text(expected):
    items = [f"    {k!r}: {v!r}," for k, v in expected.items()]
    return "\n".join(["# The arguments this code was generated for, checked at entry.",
                      "_SIGNATURE = {"] + items + ["}"])


ENTRY_HELPERS = '''
_SIGS = {}      # {(dtype, shape): _sig's text}: an array's text is built once


def _sig(x):
    """An argument as the entry check compares it: dtype and shape of an array,
    'float' for a Python float, the value of a static int/bool/str/None, and
    the same of each item of a dict, list or tuple."""
    if type(x) is np.ndarray:
        text = _SIGS.get((x.dtype, x.shape))
        if text is not None:
            return text
    if isinstance(x, (np.ndarray, np.generic)):
        text = f"{x.dtype.name}[{','.join([str(d) for d in x.shape])}]"
        if type(x) is np.ndarray and len(_SIGS) < 256:
            _SIGS[x.dtype, x.shape] = text
        return text
    if type(x) is float:
        return "float"
    if isinstance(x, dict):
        return {k: _sig(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        items = [_sig(v) for v in x]
        return items if isinstance(x, list) else tuple(items)
    if x is None or isinstance(x, (bool, int)):
        return x
    if isinstance(x, str):
        return str.__repr__(x)
    if isinstance(x, range):
        return f"range({x.start}, {x.stop}, {x.step})"
    if isinstance(x, np.dtype):
        return f"dtype({x.name})"
    try:
        name = x.__name__
    except AttributeError:
        name = None
    if x is np or isinstance(name, str) and np.__dict__.get(name) is x:
        return "np" if x is np else f"np.{name}"
    return f"<{type(x).__name__}>"


def _signature_error(*given):
    """The ValueError for arguments this code was not generated for."""
    text = ", ".join(f"{name}: {_sig_text(_sig(v))}" for name, v in zip(_SIGNATURE, given))
    want = ", ".join(f"{name}: {_sig_text(s)}" for name, s in _SIGNATURE.items())
    return ValueError(f"this code was generated for ({want}) but was called with ({text}); "
                      "pass arguments of the expected shapes, dtypes and values, or generate "
                      "the code again for these (graphc re-traces per signature)")


def _sig_text(s):
    return s if isinstance(s, str) else f"{s!r}"
'''


def entry_checks(g, sig, closure=()):
    """``({param: expected}, [(if line, raise line) per parameter])``, or None."""
    if sig is None or sig.arg_treedefs is None:
        return None
    avals = iter([g.aval(n) for n in g.inputs])
    names = [sanitize(p.name) for p in sig.params]
    wants = [_expected_sig(tdef, avals) for tdef in sig.arg_treedefs.children]
    for nid, name in closure:
        names.append(name)
        wants.append(_expected_sig(_LEAF, iter([g.aval(nid)])))
    expected, lines = {}, []
    for name, want in zip(names, wants):
        expected[name] = want
        text = repr(want) if len(repr(want)) <= 40 else f"_SIGNATURE[{name!r}]"
        # a Python float (the common scalar argument) needs no _sig() call
        test = f"type({name}) is not float" if want == "float" else \
            f"{name} is not None" if want is None else f"_sig({name}) != {text}"
        lines.append((f"if {test}:",
                      f"raise _signature_error({', '.join(names)})"))
    return expected, lines


def _expected_sig(t, avals):
    """What :func:`_sig` gives for the argument the graph was traced with."""
    if t.kind == "leaf":
        a = next(avals)
        if a.weak:
            return "float"
        return f"{np.dtype(a.dtype).name}[{','.join(str(int(d)) for d in a.shape)}]"
    if t.kind == "none":
        return None
    if t.kind == "static":
        return _plain_static(t.static)
    kids = [_expected_sig(c, avals) for c in t.children]
    if t.kind == "dict":
        return dict(zip(t.keys, kids))
    return kids if t.kind == "list" else tuple(kids)


def _plain_static(v):
    """A static value as :func:`_sig` sees it, rebuilt from plain types (its
    repr is written into the code)."""
    if v is None or isinstance(v, bool):
        return None if v is None else bool(v)
    if isinstance(v, int):
        return int.__int__(v)
    if isinstance(v, str):
        return str.__repr__(str.__str__(v))
    if isinstance(v, range):
        return f"range({int(v.start)}, {int(v.stop)}, {int(v.step)})"
    if isinstance(v, np.dtype) and v.kind in "biufc":
        return f"dtype({v.name})"
    name = getattr(v, "__name__", None)
    if v is np or isinstance(name, str) and name.isidentifier() and getattr(np, name, None) is v:
        return "np" if v is np else f"np.{name}"
    # Any other static object (the user's function, a module) was baked into the
    # graph; the generated code cannot name it, so its parameter defaults to None
    # and the entry check accepts None alone: passing another object is refused
    # rather than silently computed with the traced one.
    return None
