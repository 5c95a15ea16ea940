"""Python floats in, ``math`` code out: the scalar body of a generated function.

When every traced argument of a signature is a Python float and every operation
of the graph has a scalar form (its record's ``scalar`` template: Python float
arithmetic and the ``math`` module), the generated function first computes with
Python floats, about three times faster than NumPy's 0-d machinery, and falls
back to today's NumPy body (a second function in the module) whenever the two
could differ:

- the ``math`` code raises (``x / 0.0``, ``math.log(0.0)``, ``math.exp(1000.0)``,
  ``math.sqrt(-1.0)``, ``math.pow(-8.0, 1 / 3)``), or
- a value it computed is an infinity or a nan: the outputs are checked, and the
  arguments of the positions where a non-finite value can give a finite result
  (the record's ``scalar_masks``: ``math.exp(-inf)``, ``x / inf``); elsewhere a
  non-finite argument gives a non-finite result, which reaches a checked value, or
- NumPy does not ignore underflow now (``np.seterr``, ``np.errstate``), or
- an argument is a float subclass (whose own arithmetic NumPy's code never runs).

Where all values are finite and underflow is ignored, NumPy reports nothing, and
its float64 scalars give the same numbers as IEEE Python arithmetic and the C
library's functions, which NumPy itself calls on CPUs without its own vector
versions.  Which form each op takes here, ``math``'s, NumPy's own function on the
float inside a quiet range, or none, is measured on this machine by
:mod:`graphc.scalar_agreement`.  The results are ``np.float64`` as before
(``float64(x)`` on return; a 0-d array where NumPy's ``np.where`` gives one).
"""
from __future__ import annotations

import copy
import functools
import math
import re

import numpy as np

from .literals import const_text, tree_text
from .precedence import ATOM, prec_of
from .primitive import REGISTRY, Aval
from . import scalar_agreement as agreement

__all__ = ["ENABLED", "math_helpers", "uses_math", "math_prefix", "MATH_HELPERS",
           "weak_inputs_to_numpy", "floats_only_variant"]

#: Off: every signature gets NumPy code only (tests compare the two).
ENABLED = True

_F64 = np.dtype("float64")
_HELPER_NAMES = {"math", "float64", "_UseNumPy", "_numpy_errstate", "_ERRSTATE_OK",
                 "_underflow_ignored", "_NOT_FLOATS", "_numpy_only"}


# --- which graphs --------------------------------------------------------------------------
def _reads_array(g, node) -> bool:
    """One of ``node``'s arguments is a 0-d array in the NumPy body."""
    return any(g[a].op in REGISTRY and agreement.makes_array(g[a].op) for a in node.args)


def uses_math(g) -> bool:
    """All inputs Python floats, every op with a Python-float form here
    (:func:`~graphc.scalar_agreement.scalar_form`: ``math``'s where it agrees, else
    NumPy's function in its quiet range), every value a float64 or bool number, every
    output a float64 computed from an input or a constant, and where the NumPy body
    hands an op a 0-d array, a form that agrees with NumPy's array code too (:func:`~graphc.scalar_agreement.agrees_on_arrays`)."""
    if not ENABLED or not g.inputs or g.signature is None:
        return False
    for n in g.inputs:
        node = g[n]
        if not (node.weak and node.dtype == _F64 and node.shape == ()):
            return False
    from_input = set(g.inputs)
    for nid in g.order():
        node = g[nid]
        if node.op == "input":
            continue
        if node.op == "const":
            if not _plain_number(node):
                return False
            continue
        if node.op not in REGISTRY or node.shape != () \
                or node.dtype not in (_F64, np.dtype(bool)) \
                or any(g[a].shape != () for a in node.args) or agreement.scalar_form(node.op) is None:
            return False
        if _reads_array(g, node) and not agreement.agrees_on_arrays(node.op):
            return False            # NumPy's array code there, which the float form is not
        if any(a in from_input for a in node.args):
            from_input.add(nid)
    return all(g[o].op == "const" or (o in from_input and g[o].dtype == _F64) for o in g.outputs)


def _plain_number(node) -> bool:
    """A finite int or float64 (or weak float) constant: a Python number in the code."""
    if node.shape != () or node.dtype.kind not in "if" or node.dtype.itemsize > 8:
        return False
    if node.dtype.kind == "f" and node.dtype != _F64 and not node.weak:
        return False
    value = np.asarray(node.value).item()
    return isinstance(value, int) or math.isfinite(value)


# --- the code ---------------------------------------------------------------------------------
def _slot_prec(prim, i, n):
    """Precedence argument ``i`` needs in ``prim``'s scalar template."""
    tmpl = agreement.scalar_form(prim.name)
    if tmpl != prim.scalar:
        return ATOM                 # NumPy's function in a condition: names and literals
    if tmpl == prim.numpy:
        return prim.slot_prec(i, n)
    m = re.search(r"\{%d\}" % i, tmpl)
    if tmpl[:m.start()].rstrip().endswith(("(", ",")) and tmpl[m.end():].lstrip()[:1] in (",", ")"):
        return 0
    return _prec(tmpl, n) + 1


@functools.cache
def _prec(tmpl, n):
    return prec_of(tmpl.format(*"abc"[:n]))


def _masked(g, nid):
    """``nid`` is an argument in a position whose non-finite value the op can hide."""
    for u in g.users(nid):
        masks = REGISTRY[g[u].op].scalar_masks
        if any(a == nid and i in masks for i, a in enumerate(g[u].args)):
            return True
    return False


def _emitter(g, numpy_em):
    """An emitter writing each op's scalar form, with the NumPy body's names."""
    from .codegen import Emitter

    class ScalarEmitter(Emitter):
        def node_expr(self, nid, out_name):
            node = self.g[nid]
            prim = REGISTRY[node.op]
            n = len(node.args)
            texts = [self.ref(a, _slot_prec(prim, i, n)) for i, a in enumerate(node.args)]
            form = agreement.scalar_form(node.op)
            return form.format(*texts), _prec(form, n)

        def constant(self, nid):
            node = self.g[nid]
            text = const_text(node.value, Aval((), node.dtype, True)).replace("np.pi", "math.pi")
            self.expr[nid] = (text, prec_of(text))

        def can_inline(self, nid, node):
            # a checked value needs a name; a template reading an argument twice, too
            if not super().can_inline(nid, node) or _masked(self.g, nid) \
                    or agreement.scalar_form(node.op) != REGISTRY[node.op].scalar:
                return False        # (a conditional expression reads better on its own line)
            user = self.g[next(iter(self.g.users(nid)))]
            i = user.args.index(nid)
            return agreement.scalar_form(user.op).count("{%d}" % i) == 1

    em = ScalarEmitter(g, names=copy.deepcopy(numpy_em.ns))
    em.name.update({n: numpy_em.name[n] for n in g.inputs})
    em.fixed = {nid: name for nid, name in numpy_em.name.items() if nid not in g.inputs}
    return em


def _checked(g, em):
    """Names whose finiteness the code checks: the outputs and the masked arguments."""
    out = []
    for nid in list(g.outputs) + [n for n in g.order() if _masked(g, n)]:
        node = g[nid]
        if node.op != "const" and node.dtype == _F64 and em.name[nid] not in out:
            out.append(em.name[nid])
    return out


def _array(g, nid):
    """The NumPy code gives a 0-d array here (``np.where``), not an ``np.float64``."""
    op = g[nid].op
    return op == "where" or op in ("identity", "stop_gradient") and _array(g, g[nid].args[0])


def _returned(g, em, numpy_em):
    refs = [numpy_em.ref(o) if g[o].op == "const" else
            f"{'np.array' if _array(g, o) else 'float64'}({em.name[o]})" for o in g.outputs]
    return tree_text(g.signature.out_treedef, iter(refs), top=True) \
        if g.signature.out_treedef is not None else ", ".join(refs)


def math_prefix(g, numpy_em, func_name, unpack):
    """The start of the generated function for graph ``g``: the ``math`` body and the
    ``def`` of its NumPy fallback, whose body (``numpy_em``'s, already emitted) follows;
    ``[]`` where the graph has no ``math`` form or a name would collide."""
    if not uses_math(g):
        return []
    from .codegen import _body_lines
    em = _emitter(g, numpy_em)
    body = _body_lines(em, indent="        ")
    fallback = f"_{func_name}_numpy"
    params = [numpy_em.name[n] for n in g.inputs]
    names = set(params) | set(em.name.values()) | set(numpy_em.name.values()) | {func_name}
    if names & (_HELPER_NAMES | {fallback}):
        return []
    lines = ["    " + line for line in unpack]
    exact = " is ".join([f"type({p})" for p in params] + ["float"])
    lines += ["    try:   # Python floats and `math` (NumPy's values), else NumPy's code below",
              f"        if not ({exact}):",
              _SUBCLASS_RAISE,
              "        if _numpy_errstate() is not _ERRSTATE_OK and not _underflow_ignored():",
              '            raise _UseNumPy("NumPy reports underflow now")']
    lines += body
    if any(line.strip().startswith(("# grad of", "# tangent of")) for line in body):
        lines.append("")
    checked = _checked(g, em)
    lines += [f"        if not math.isfinite({' + '.join(checked)}):",
              '            raise _UseNumPy("an infinity or a nan")'] * bool(checked)
    lines += ["    except (ArithmeticError, ValueError):   # x / 0.0, math.log(0.0), math.exp(1000.0)",
              "        pass",
              "    else:",
              f"        return {_returned(g, em, numpy_em)}",
              f"    return {fallback}({', '.join(params)})",
              "", "",
              f"def {fallback}({', '.join(params)}):",
              f'    """{func_name} with NumPy\'s scalars: its infinities, nans and warnings."""']
    return lines


#: The line sending a float subclass to NumPy's code, and what the variant that compiled
#: callables run for exact Python floats says there (:func:`floats_only_variant`).
_SUBCLASS_RAISE = '            raise _UseNumPy("a float subclass: its own arithmetic")'
_NOT_FLOATS_RETURN = "            return _NOT_FLOATS   # (not this signature: the caller's key decides)"


def floats_only_variant(fast: str):
    """``fast`` (a module's executed variant) for a signature of exact Python floats only,
    or None where it has no ``math`` body: where that body would send a float subclass to
    NumPy's code, this variant returns the module's ``_NOT_FLOATS`` instead, so that
    ``Compiled.__call__`` can call it without testing the arguments' types first (the
    function tests them itself, once) and take its cache key when it says no
    (graphc/floats_call.py).  Line for line the same as the source, like ``fast``."""
    lines = fast.split("\n")
    try:    # (the first such line is the prefix's own: user text only follows it in comments)
        i = lines.index(_SUBCLASS_RAISE)
    except ValueError:
        return None
    return "\n".join(lines[:i] + [_NOT_FLOATS_RETURN] + lines[i + 1:])


#: With a NumPy function in the Python-float code only
#: (:func:`~graphc.scalar_agreement.numpy_form`).
NUMPY_ONLY_HELPER = '''
def _numpy_only():
    """Outside the range where NumPy's function warns nothing: NumPy's code runs."""
    raise _UseNumPy("NumPy's function could warn here")
'''


def math_helpers(prefix) -> str:
    """The module's helpers for the Python-float code ``prefix`` (lines)."""
    uses_numpy = any("_numpy_only()" in line for line in prefix)
    return MATH_HELPERS.strip() + ("\n\n\n" + NUMPY_ONLY_HELPER.strip()) * uses_numpy


def weak_inputs_to_numpy(g, em):
    """Python-float inputs become np.float64 where that cannot change a dtype.

    A Python float is weak (NEP 50) only next to float16/float32 values; in an
    all-float64 graph turning it into np.float64 gives NumPy semantics
    (inf instead of ZeroDivisionError, nan instead of complex powers).
    """
    low = any(g[n].dtype.kind == "f" and g[n].dtype.itemsize < 8
              for n in g)
    if low:
        return []
    return [f"{em.name[n]} = np.float64({em.name[n]})" for n in g.inputs
            if g[n].weak and g[n].dtype.kind == "f"
            and g[n].shape == ()]


MATH_HELPERS = '''
float64 = np.float64        # the results' type in NumPy's code (a global: one lookup per call)


class _UseNumPy(ArithmeticError):
    """The `math` code cannot give NumPy's answer here: NumPy's code runs instead."""


# NumPy's floating-point error state (np.seterr, np.errstate): the `math` code runs
# only while NumPy ignores underflow (its default), when finite values are all it
# needs to match NumPy, which then reports nothing either.
try:
    _numpy_errstate = np._core.umath._extobj_contextvar.get
except AttributeError:      # another NumPy: ask np.geterr() at each call
    _numpy_errstate = object
_ERRSTATE_OK = None         # the last error state seen ignoring underflow


def _underflow_ignored():
    """NumPy ignores floating-point underflow now (remembers this error state if so)."""
    global _ERRSTATE_OK
    if np.geterr()["under"] != "ignore":
        return False
    _ERRSTATE_OK = _numpy_errstate()
    return True
'''
