"""The module for every size of the named dimensions: entry, checks, helpers.

:func:`build` probes the function (:mod:`graphc.symbolic_dims`), fits the numbers
that change, and writes the entry: each named dimension is read from the first
argument that has it (``n = _dim(x, 0)``), and every argument is checked against
the expected signature with the dimensions filled in, so that ``n`` must be the
same wherever it appears and every fixed size, rank and dtype must match.
"""
from __future__ import annotations

import io
import re
import tokenize

from . import loader
from .errors import ShapeError
from .entry_checks import _expected_sig
from .primitive import Aval
from .pytree import flatten
from .signature import from_function
from .symbolic_dims import fit_sources, named_dims, probe_sizes, trace_probes
from .symdims import SymbolicShapeError

__all__ = ["build", "SYMBOLIC_HELPERS"]

_SIG_HEAD = "# The arguments this code was generated for, checked at entry."
_SENTINEL = 900000001          # a sentinel size per named dimension (never a real probe size)

SYMBOLIC_HELPERS = '''
def _dim(x, axis, *keys):
    """The size of a named dimension: axis ``axis`` of an argument (-1 when the
    argument has no such axis or it is empty: the entry check then refuses it)."""
    try:
        for key in keys:
            x = x[key]
        size = x.shape[axis] if isinstance(x, (np.ndarray, np.generic)) else -1
    except (LookupError, TypeError):
        return -1
    return size if size > 0 else -1


def _fill(want, dims):
    """An expected signature with the named dimensions replaced by their sizes."""
    if isinstance(want, dict):
        return {k: _fill(v, dims) for k, v in want.items()}
    if isinstance(want, (list, tuple)):
        items = [_fill(v, dims) for v in want]
        return items if isinstance(want, list) else tuple(items)
    if isinstance(want, str) and want.endswith("]") and "[" in want:
        head, _, shape = want[:-1].partition("[")
        return head + "[" + ",".join(str(dims.get(d, d)) for d in shape.split(",")) + "]"
    return want
'''


def build(compiled, args, kwargs):
    """``(graph, source, fn, func_name)`` of the module serving every size."""
    names = named_dims(args, kwargs)
    for which in (0, 1):
        points = probe_sizes(names, args, kwargs, which)
        try:
            probes = trace_probes(compiled._build_unpaused, args, kwargs, points)
            break
        except ShapeError as e:     # too small for a kernel: once more with larger sizes
            if which or isinstance(e, SymbolicShapeError):
                raise
    entries, seen = [], {}
    for entry, s in probes:
        entries.append(entry)
        seen.update(s)
    _check_seen(seen, points)
    func_name = entries[0].func_name
    if getattr(compiled, "target", "numpy") == "array-api":     # (graphc/symbolic_xp.py)
        from .symbolic_xp import build_xp
        return build_xp(compiled, entries, points, _variables(names, entries[0].source.split("\n\n\ndef _")[0]), seen,
                        func_name)
    split = [_split(e.source, func_name) for e in entries]
    texts = [s[0] for s in split]
    variables = _variables(names, texts[0])
    body = fit_sources(texts, points, variables, seen)
    g = entries[0].graph
    values = from_function(compiled._signature_fn(args), args, kwargs)[1]
    leaves = flatten(tuple(values))[0]
    body = _sized_consts_inside(body, func_name, variables)
    source = _with_entry(body, split[0][1], split[0][2], g, leaves, names, variables)
    fn = loader.exec_module(source, func_name, compiled.__name__)
    return g, source, fn, func_name


def _check_seen(seen, points):
    """A size the user's code computed that is the same at every probe but not constant
    (``x.shape[0] // 1000``): the probes cannot tell how the code depends on it."""
    for expr, where in seen.values():
        syms = {s.name: s for s in expr.free_symbols}
        vals = {expr.subs({syms[k]: v for k, v in p.items() if k in syms}) for p in points}
        if len(vals) == 1:
            raise SymbolicShapeError(
                f"the code computes {expr} from named dimensions, which is {vals.pop()} at every "
                "size graphc probes but not constant: graphc cannot tell how the computation "
                "depends on it", where=where)


def _split(source, func_name):
    """``(text, checks, signature)``: the source with its entry checks and its
    ``_SIGNATURE`` block replaced by placeholder lines, and those lines."""
    lines = source.split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith(f"def {func_name}("))
    i += 1 + lines[i + 1].startswith('    """')
    checks = []
    while lines[i].startswith("    if ") and lines[i + 1].startswith("        raise _signature_error("):
        checks.append((lines[i], lines[i + 1]))
        i += 2
    start = i - 2 * len(checks)
    lines[start:i] = ["    #@ENTRY@"]
    sig = []
    if _SIG_HEAD in lines:
        a = lines.index(_SIG_HEAD)
        b = lines.index("}", a)
        sig = lines[a:b + 1]
        lines[a:b + 1] = ["#@SIGNATURE@"]
    return "\n".join(lines), checks, sig


def _sized_consts_inside(body, func_name, variables):
    """Module-level constants whose size is a named dimension (a Jacobian's basis
    ``np.eye(n * 3)``, with respect to an argument of ``n`` rows) are made in the
    function instead, after the entry has read the dimension."""
    lines = body.split("\n")
    start = next(k for k, line in enumerate(lines) if line.startswith(f"def {func_name}("))
    dim = re.compile(r"\b(?:" + "|".join(re.escape(v) for v in variables.values()) + r")\b")
    keep, moved = [], []
    for line in lines[:start]:
        if line[:1].isidentifier() and " = " in line and dim.search(line.partition(" = ")[2]):
            try:
                compile(line, "<const>", "exec")
            except SyntaxError:
                raise SymbolicShapeError("a constant whose size is a named dimension spans "
                                         "several lines of the module") from None
            moved.append("    " + line)
        else:
            keep.append(line)
    if not moved:
        return body
    rest = lines[start:]
    at = rest.index("    #@ENTRY@") + 1
    return "\n".join(keep + rest[:at] + moved + rest[at:])


def _variables(names, text):
    """``{dimension name: variable}``, a variable not already used in the code."""
    used = {t.string for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.NAME}
    out = {}
    for k in names:
        var = k
        while var in used or var in out.values():
            var += "_"
        out[k] = var
    return out


def _with_entry(body, checks, sig_lines, g, leaves, names, variables):
    """The body with the symbolic entry block and ``_SIGNATURE`` put back."""
    if not checks:
        raise SymbolicShapeError("named dimensions need the code's entry check, which this "
                                 "function's generated code does not have")
    params = checks[0][1].strip()[len("raise _signature_error("):-1].split(", ")
    sentinel = {k: str(_SENTINEL + i) for i, k in enumerate(names)}
    avals, reads = [], {}
    for i, leaf in enumerate(leaves):
        shape = getattr(leaf, "shape", None)
        if type(leaf).__name__ == "Spec" and any(isinstance(d, str) for d in shape):
            avals.append(Aval(tuple(int(sentinel[d]) if isinstance(d, str) else d
                                    for d in shape), leaf.dtype, False))
            for axis, d in enumerate(shape):
                if isinstance(d, str) and d not in reads:
                    reads[d] = (g.signature.leaf_paths[i], axis)
        else:
            avals.append(g.aval(g.inputs[i]))
    it = iter(avals)
    wants = [_expected_sig(t, it) for t in g.signature.arg_treedefs.children]
    entry = ["    # named dimensions, read from the arguments (and checked below)"]
    for k in names:
        path, axis = reads[k]
        keys = "".join(f", {key!r}" for key in path[1:])
        entry.append(f"    {variables[k]} = _dim({params[path[0]]}, {axis}{keys})")
    dims = ", ".join(f"{k!r}: {variables[k]}" for k in names)
    sig_lines = list(sig_lines)
    for j, (test, raise_line) in enumerate(checks):
        want = wants[j] if j < len(wants) else None
        text = repr(want)
        if any(s in text for s in sentinel.values()):
            name = params[j]
            shown = text
            for k, s in sentinel.items():
                shown = shown.replace(s, k)
                text = text.replace(s, "{" + variables[k] + "}")
            if isinstance(want, str):
                test = f"    if _sig({name}) != f{text}:"
            else:
                test = f"    if _sig({name}) != _fill(_SIGNATURE[{name!r}], {{{dims}}}):"
            sig_lines[2 + j] = f"    {name!r}: {shown},"
        entry += [test, raise_line]
    if sig_lines:
        sig_lines[0] = (_SIG_HEAD[:-1] + "; " + ", ".join(names)
                        + (" is any size >= 1, the same" if len(names) == 1 else
                           " are any sizes >= 1, each the same") + " wherever it appears.")
    text = body.replace("    #@ENTRY@", "\n".join(entry), 1)
    text = text.replace("#@SIGNATURE@", "\n".join(sig_lines), 1)
    return text.rstrip("\n") + "\n\n\n" + SYMBOLIC_HELPERS.strip() + "\n"
