"""Named dimensions on the ``"array-api"`` target: one module for every size.

:func:`graphc.symbolic_module.build` probes the function at a few sizes and fits
the numbers that change (:func:`graphc.symbolic_dims.fit_sources`); for the
array-API target the fitted text's entry checks already read like the contract
(``_check('x', x, (n, 784), 'float32', xp)``), so all that is added is the entry
block reading each named dimension from the first argument that has it::

    # named dimensions, read from the arguments (and checked below)
    n = int(x.shape[0])
    if n < 1:
        raise ValueError(...)

The checks that follow then hold ``n`` to be the same wherever it appears.
"""
from __future__ import annotations

import ast
import io
import tokenize

from . import loader
from .symbolic_dims import fit_sources
from .symdims import SymbolicShapeError

__all__ = ["build_xp"]

_FLOAT32 = '''
def _float32(v):
    """``v`` rounded to the nearest float32 (as NumPy's float32(v)), in plain Python."""
    import struct
    return struct.unpack("f", struct.pack("f", v))[0]
'''


def _reads_numpy(text):
    """Whether the code (not its comments) names ``np``."""
    toks = tokenize.generate_tokens(io.StringIO(text.split("\n\n\ndef _")[0]).readline)
    return any(t.type == tokenize.NAME and t.string == "np" for t in toks)


def _reads(lines, at, variables):
    """``{variable: "x.shape[0]"}``: where each named dimension is first read."""
    reads = {}
    for line in lines[at:]:
        if not line.startswith("    _check("):
            break
        call = ast.parse(line.strip()).body[0].value
        var, shape = call.args[1], call.args[2]
        for axis, d in enumerate(shape.elts):
            if isinstance(d, ast.Name) and d.id in variables.values() and d.id not in reads:
                reads[d.id] = f"{var.id}.shape[{axis}]"
    return reads


def build_xp(compiled, entries, points, variables, seen, func_name):
    """``(graph, source, fn, func_name)`` of the array-API module serving every size."""
    body = fit_sources([e.source for e in entries], points, variables, seen)
    body = body.replace("float(np.float32(", "float(_float32(")    # the module imports no NumPy
    if _reads_numpy(body):
        raise SymbolicShapeError(
            "a constant of this function depends on the named dimensions in a way the "
            "array-API target cannot write without NumPy",
            hint='trace with concrete shapes, or use target="numpy" for named dimensions')
    lines = body.split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("    _check(")), None)
    reads = _reads(lines, at, variables) if at is not None else {}
    missing = [k for k, v in variables.items() if v not in reads]
    if missing:
        raise SymbolicShapeError(
            f"the named dimension {missing[0]!r} is not the size of an array argument",
            hint="name a dimension of an array argument: graphc.Spec((\"n\", 784), \"float32\")")
    entry = ["    # named dimensions, read from the arguments (and checked below)"]
    for k, v in variables.items():
        entry += [f"    {v} = int({reads[v]})",
                  f"    if {v} < 1:",
                  f"        raise ValueError(f\"this code serves every size {k} >= 1 but was "
                  f"called with {k} = {{{v}}}\")"]
    lines[at:at] = entry
    source = "\n".join(lines)
    if "_float32(" in source:
        source = source.rstrip("\n") + "\n\n\n" + _FLOAT32.strip() + "\n"
    fn = loader.exec_module(source, func_name, compiled.__name__)
    return entries[0].graph, source, fn, func_name
