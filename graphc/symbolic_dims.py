"""One generated module for every size of a named dimension (``Spec(("n", 784))``).

A verified specialization: the function is traced and its code generated at
several sizes of each named dimension (probes, traced under
:class:`graphc.symdims.probing`).  The modules must be the same token for
token except for numbers; each number that differs is fitted to a form in the
named dimensions (``n``, ``n * 784 + 4``, ``1 / n``, the float32 rounding of
``1 / n``, an expression the user's code computed from ``x.shape``) that must
reproduce it at every probe, including two that play no part in choosing the
form.  Anything else (a structure or a string that changes with the size, a
number no form fits) is refused, naming the user's line.  The module then reads
the named dimensions from the arguments at entry and checks every argument
against them (:mod:`graphc.symbolic_text`).
"""
from __future__ import annotations

import ast
import io
import itertools
import re
import tokenize
from fractions import Fraction

import numpy as np
import sympy as sp

from .capture import Spec, gc_paused
from .pytree import flatten, unflatten
from .source_comments import COMMENT_COL
from .symdims import CODEGEN_SIZES, SymbolicShapeError, probing, symbol

__all__ = ["has_named_dims", "named_dims", "probe_sizes", "fit_sources"]

# Probe sizes: varied parity and residues, small enough to keep graphc's size thresholds
# (constant folding) on one side; a second, larger set when the first does not fit
# (a convolution's kernel).
_SIZES = ((13, 22, 17, 26, 19, 34, 23, 38, 29, 46, 31, 58, 37, 62, 41, 74, 43, 82),
          (53, 94, 59, 106, 61, 118, 67, 122, 71, 134, 73, 142, 79, 146, 83, 158, 89, 166))


def named_dims(args, kwargs):
    """The names of the named dimensions in the arguments' Specs, in order of appearance."""
    names = []
    for leaf in flatten((args, kwargs))[0]:
        if isinstance(leaf, Spec):
            names += [d for d in leaf.shape if isinstance(d, str) and d not in names]
    return names


def has_named_dims(args, kwargs):
    return any(isinstance(leaf, Spec) and any(isinstance(d, str) for d in leaf.shape)
               for leaf in flatten((args, kwargs))[0])


def probe_sizes(names, args, kwargs, which=0):
    """``[{name: size}]``: a base point, one point per name moving it alone, two more
    moving all.  Sizes are distinct and never a fixed size of any argument."""
    fixed = set()
    for leaf in flatten((args, kwargs))[0]:
        shape = leaf.shape if isinstance(leaf, Spec) else np.shape(leaf) \
            if isinstance(leaf, (np.ndarray, np.generic)) else ()
        fixed |= {d for d in shape if isinstance(d, int)}
    sizes = (v for v in itertools.chain(_SIZES[which], itertools.count(_SIZES[which][-1] + 7, 7))
             if v not in fixed)
    base = {k: next(sizes) for k in names}
    points = [base]
    for k in names:
        points.append({**base, k: next(sizes)})
    points += [{k: next(sizes) for k in names} for _ in range(3)]
    return points


def concrete(args, kwargs, sizes):
    """The arguments with each named dimension of a Spec replaced by its probe size."""
    leaves, tdef, _ = flatten((args, kwargs))
    leaves = [Spec(tuple(sizes[d] if isinstance(d, str) else d for d in x.shape), x.dtype)
              if isinstance(x, Spec) else x for x in leaves]
    return unflatten(tdef, leaves)


def trace_probes(build, args, kwargs, points):
    """``[(entry, seen)]``: ``build(args, kwargs)`` at each probe point."""
    out = []
    with gc_paused():
        for sizes in points:
            pargs, pkwargs = concrete(args, kwargs, sizes)
            # no del/out= memory choices: graphc makes them by size (symdims.nbytes)
            token = CODEGEN_SIZES.set(True)
            try:
                with probing(sizes) as probe:
                    out.append((build(pargs, pkwargs), probe.seen))
            finally:
                CODEGEN_SIZES.reset(token)
    return out


# --- comparing and fitting the generated text ----------------------------------------
def _tokens(text):
    return list(tokenize.generate_tokens(io.StringIO(text).readline))


def _where_near(lines, row):
    """The user's ``file.py:LINE`` named in a generated line's comment, at or above ``row``."""
    for i in range(row, -1, -1):
        found = re.findall(r"\S+\.py:\d+", lines[i].partition("#")[2])
        if found:
            return found[-1]
        if lines[i].lstrip().startswith("# grad of:"):
            break
    return None


def _same_structure(toks, texts, points, names):
    """Refuse modules that differ in anything but numbers and comments."""
    def same(a, b):
        return a.type == b.type and (a.string == b.string or a.type in (
            tokenize.NUMBER, tokenize.COMMENT))
    for j in range(1, len(toks)):
        a, b = toks[0], toks[j]
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if not same(x, y)), None)
        if i is None and len(a) == len(b):
            continue
        i = min(len(a), len(b)) - 1 if i is None else i
        raise _differs(texts, points, j, a[i].start[0] - 1, b[i].line, list(names))


def _differs(texts, points, j, row, other_line, names):
    lines = texts[0].splitlines()
    row = min(row, len(lines) - 1)
    at = ", ".join(f"{k}={v}" for k, v in points[0].items())
    at2 = ", ".join(f"{k}={v}" for k, v in points[j].items())
    return SymbolicShapeError(
        f"the code generated for the named dimensions {', '.join(names)} is not the same at "
        "every size: its structure depends on the size (a Python loop over range(x.shape[0]) "
        "or len(x), a branch on a size, a size turned into a plain int, or a layout graphc "
        f"chooses by size); at {at} a generated line is `{lines[row].strip()[:100]}`, at "
        f"{at2} it is `{other_line.strip()[:100]}`", where=_where_near(lines, row))


def fit_sources(texts, points, names, seen):
    """The text of ``texts[0]`` with every number that changes across probes
    replaced by its form in the named dimensions ``{name: variable}``.

    ``texts[i]`` is the module generated at ``points[i]``; ``seen`` the
    expressions the user's code computed from sizes.
    """
    toks = [_tokens(t) for t in texts]
    _same_structure(toks, texts, points, names)
    forms = _candidate_forms(names, seen, points)
    edits = []
    for i, t0 in enumerate(toks[0]):
        others = [tk[i] for tk in toks[1:]]
        strings = [t0.string] + [o.string for o in others]
        if len(set(strings)) == 1:
            continue
        if t0.type == tokenize.NUMBER:
            text = _fit_number([ast.literal_eval(s) for s in strings], forms, names, points)
            if text is None:
                raise _unfitted(texts, points, t0, strings, names)
            prev = toks[0][i - 1].string if i else ""
            nxt = toks[0][i + 1].string if i + 1 < len(toks[0]) else ""
            if not _is_atom(text) and not (prev in "([{,=:" and nxt in ")]},:"):
                text = f"({text})"
            edits.append((t0.start, t0.end, text))
        elif t0.type == tokenize.COMMENT:
            edits.append((t0.start, t0.end, _fit_comment(strings, forms, names, points)))
        else:
            raise _differs(texts, points, 0, t0.start[0] - 1, toks[0][i].line, list(names))
    comments = {t.start[0]: t for t in toks[0] if t.type == tokenize.COMMENT}
    return _apply(texts[0], edits, comments)


def _unfitted(texts, points, tok, strings, names):
    lines = texts[0].splitlines()
    row = tok.start[0] - 1
    values = ", ".join(f"{s} at {', '.join(f'{k}={v}' for k, v in p.items())}"
                       for s, p in zip(strings, points))
    return SymbolicShapeError(
        f"a number in the generated code changes with the named dimensions "
        f"{', '.join(names)} in a way graphc cannot express ({values}) in the line "
        f"`{lines[row].strip()[:120]}`", where=_where_near(lines, row))


def _is_atom(text):
    return text.isidentifier() or text.isdigit() or re.fullmatch(r"float\(np\.\w+\(.*\)\)", text)


def _apply(text, edits, comments):
    """``text`` with ``edits`` made; inline comments of edited lines aligned again
    (``comments``: ``{row: comment token}``, as graphc.source_comments aligns them)."""
    lines = text.splitlines(keepends=True)
    rows = set()
    for (r0, c0), (r1, c1), new in sorted(edits, reverse=True):
        line = lines[r0 - 1]
        lines[r0 - 1] = line[:c0] + new + line[c1:]
        rows.add(r0)
    for row in rows & set(comments):
        tok = comments[row]
        old = text.splitlines()[row - 1]
        code_end0 = len(old[:tok.start[1]].rstrip())
        line = lines[row - 1].rstrip("\n")
        cut = line.rfind("  #") if code_end0 else -1
        if cut < 0 or not line[:cut].strip():
            continue
        code = line[:cut].rstrip()
        indent = len(code) - len(code.lstrip())
        aligned = tok.start[1] - code_end0 > 2 or indent == 4
        col = max(4 + COMMENT_COL if indent == 4 else tok.start[1] if aligned else 0,
                  len(code) + 2)
        lines[row - 1] = code.ljust(col) + line[cut:].lstrip() + "\n"
    return "".join(lines)


def _candidate_forms(names, seen, points):
    """``[(sympy expr, values at the points)]``: products of named dimensions, then the
    user's own expressions."""
    syms = {k: symbol(k) for k in names}
    out = []
    for r in range(1, len(names) + 1):
        for combo in itertools.combinations(names, r):
            expr = sp.Mul(*[syms[k] for k in combo])
            out.append(expr)
    for expr, _ in seen.values():
        if expr not in out:
            out.append(expr)
    forms = []
    for expr in out:
        vals = [expr.subs({syms[k]: p[k] for k in names}) for p in points]
        if expr.is_integer:
            forms.append((expr, [int(v) for v in vals]))
        else:           # 1 / x.shape[0] in the user's code: a float form, exact values
            forms.append((expr, vals))
    return forms


def _fit_int(values, forms):
    """``(a, expr, b)`` with ``a * expr + b == value`` at every point, or None."""
    for expr, ms in _integer(forms):
        pairs = [(m, v) for m, v in zip(ms, values)]
        (m1, v1), (m2, v2) = pairs[0], next(((m, v) for m, v in pairs if m != pairs[0][0]),
                                            (None, None))
        if m2 is None:
            continue
        a = Fraction(v2 - v1, m2 - m1)
        b = v1 - a * m1
        if a.denominator != 1 or b.denominator != 1 or a == 0:
            continue
        if all(a * m + b == v for m, v in pairs):
            return int(a), expr, int(b)
    return None


def _fit_int2(values, forms):
    """A SymPy ``a1 * f1 + a2 * f2 + b`` (integers) giving every value, or None."""
    for (e1, m1), (e2, m2) in itertools.combinations(_integer(forms), 2):
        A = np.array([m1, m2, [1] * len(m1)], dtype=float).T
        coef = np.linalg.lstsq(A, np.array(values, dtype=float), rcond=None)[0]
        a1, a2, b = (int(round(c)) for c in coef)
        if a1 and a2 and all(a1 * x + a2 * y + b == v for x, y, v in zip(m1, m2, values)):
            return a1 * e1 + a2 * e2 + b
    return None


def _integer(forms):
    return [(e, ms) for e, ms in forms if e.is_integer]


def _rounded(v, rounding):
    return float(v) if rounding is None else float(rounding(float(v)))


def _fit_float(values, forms):
    """``(numerator text, expr, dtype or None)``: ``c / expr`` (rounded to float32 when
    the dtype says so) gives every value exactly, or None; ``(None, expr, dtype)``
    when the user's own expression gives them."""
    for expr, vs in forms:
        if not expr.is_integer:
            for rounding in (None, np.float32, np.float16):
                if all(_rounded(v, rounding) == w for v, w in zip(vs, values)):
                    return None, expr, rounding
    for expr, ms in _integer(forms):
        ratios = [v * m for v, m in zip(values, ms)]
        r0 = ratios[0]
        if r0 == 0 or any(abs(r - r0) > 1e-6 * abs(r0) for r in ratios):
            continue
        nums = []
        if abs(r0 - round(r0)) < 1e-6 * abs(r0):
            nums.append(str(int(round(r0))))
        nums += [repr(float(f"{r0:.{p}g}")) for p in range(1, 10)]
        tries = [(num, 1) for num in dict.fromkeys(nums)]
        if abs(1 / r0 - round(1 / r0)) < 1e-6 * abs(1 / r0):     # 1 / (k * n): a mean
            tries.append(("1", int(round(1 / r0))))
        for num, k in tries:
            c = float(num)
            for rounding in (None, np.float32, np.float16):
                def value(m, c=c, k=k, rounding=rounding):
                    q = c / (k * m) if k != 1 else c / m
                    return q if rounding is None else float(rounding(q))
                if all(value(m) == v for m, v in zip(ms, values)):
                    return num, expr * k if k != 1 else expr, rounding
    return None


def _fit_number(values, forms, names, points):
    if all(type(v) is int for v in values):
        fit = _fit_int(values, forms)
        if fit is None:
            two = _fit_int2(values, forms)
            return None if two is None else _code(two, names)
        a, expr, b = fit
        text = _code(expr, names)
        if a != 1:
            text = f"{text} * {a}" if _is_atom(text) or "*" in text and "+" not in text \
                else f"({text}) * {a}"
        if b:
            text += f" + {b}" if b > 0 else f" - {-b}"
        return text
    if all(type(v) is float for v in values):
        fit = _fit_float(values, forms)
        if fit is None:
            return None
        num, expr, rounding = fit
        if num is None:
            text = _code(expr, names)
        else:
            den = _code(expr, names)
            den = den if _is_atom(den) else f"({den})"
            num = num[:-2] if num.endswith(".0") else num
            text = f"{num} / {den}"
        if rounding is not None:
            text = f"float(np.{np.dtype(rounding).name}({text}))"
        return text
    return None


def _fit_comment(strings, forms, names, points):
    """A comment (``# f32[29,784]``) with the numbers that change written as forms."""
    parts = [re.split(r"(\d+)", s) for s in strings]
    if len({len(p) for p in parts}) != 1:
        return strings[0]
    out = []
    for j, piece in enumerate(parts[0]):
        column = [p[j] for p in parts]
        if len(set(column)) == 1 or j % 2 == 0:
            out.append(piece if len(set(column)) == 1 else "?")
            continue
        text = _fit_number([int(c) for c in column], forms, names, points)
        out.append("?" if text is None else text.replace(" ", ""))
    return "".join(out)


def _code(expr, names):
    """Python text of a SymPy expression over the named dimensions."""
    return _Printer(names).doprint(expr)


class _Printer(sp.printing.str.StrPrinter):
    def __init__(self, names):
        super().__init__({"order": "none"})
        self.names = names

    def _print_Symbol(self, expr):
        return self.names.get(expr.name, expr.name)

    def _print_Mul(self, expr):
        num, den = expr.as_numer_denom()
        if den != 1:            # a true division (floor() prints its own //)
            return f"{self._paren(num)} / {self._paren(den)}"
        syms = [a for a in expr.args if not a.is_Number]
        coeff = [a for a in expr.args if a.is_Number]
        syms.sort(key=lambda a: list(self.names).index(a.name) if a.is_Symbol and a.name
                  in self.names else len(self.names))
        return " * ".join([self._print(a) if not a.is_Add else f"({self._print(a)})"
                           for a in syms + coeff])

    def _print_Add(self, expr):
        terms = sorted(expr.args, key=lambda t: (t.is_Number, t.could_extract_minus_sign()))
        text = ""
        for t in terms:
            neg = t.could_extract_minus_sign()
            body = self._print(-t if neg else t)
            text += (" - " if neg else " + ") + body if text else ("-" if neg else "") + body
        return text

    def _print_floor(self, expr):
        num, den = expr.args[0].as_numer_denom()
        return f"{self._paren(num)} // {self._paren(den)}"

    def _print_Mod(self, expr):
        return f"{self._paren(expr.args[0])} % {self._paren(expr.args[1])}"

    def _paren(self, e):
        text = self._print(e)
        return text if e.is_Atom or e.func is sp.floor else f"({text})"
