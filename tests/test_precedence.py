"""The one precedence table: it agrees with Python's parser, with the records'
``prec`` fields and with the literals generated code writes."""
import ast
import itertools
import re

import numpy as np
import pytest

import graphc  # noqa: F401  (registers every primitive)
from graphc.literals import const_text
from graphc.precedence import ATOM, TABLE, prec_of, wrap
from graphc.primitive import REGISTRY, Aval

BINARY = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div, "@": ast.MatMult,
          "**": ast.Pow, "%": ast.Mod, "//": ast.FloorDiv, "|": ast.BitOr, "&": ast.BitAnd,
          "^": ast.BitXor, "<<": ast.LShift}


@pytest.mark.parametrize("outer,inner", list(itertools.product(BINARY, BINARY)))
def test_table_orders_binary_operators_as_python_does(outer, inner):
    # "a inner b" as the right operand of "x outer ...": Python's parser nests it
    # under outer exactly when the table says it binds tighter (or pow, right-assoc).
    text = f"x {outer} a {inner} b"
    tree = ast.parse(text, mode="eval").body
    tighter = TABLE[BINARY[inner]] > TABLE[BINARY[outer]] or (
        outer == inner == "**")
    nested_right = isinstance(tree.right, ast.BinOp) if isinstance(tree, ast.BinOp) else False
    assert type(tree.op) is (BINARY[outer] if tighter else BINARY[inner])
    assert nested_right is tighter


@pytest.mark.parametrize("text,prec", [
    ("x", ATOM), ("np.exp(x)", ATOM), ("x[0, 1:2]", ATOM), ("x.T", ATOM), ("1.5", ATOM),
    ("1e-05", ATOM), ("np.float32(-1.0)", ATOM), ("-1.0", 13), ("-np.inf", 13),
    ("np.pi / 2", 12), ("2 * np.pi", 12), ("-np.pi / 4", 12), ("a + b", 11), ("a ** b", 14),
    ("a > b", 6), ("a < b < c", 6), ("not a", 5), ("a and b", 4), ("a or b", 3),
    ("a if c else b", 2), ("lambda: 0", 1), ("a = 1", 0), ("", 0),
])
def test_prec_of(text, prec):
    assert prec_of(text) == prec


def test_wrap_parenthesizes_only_below_the_slot():
    assert wrap("a + b", 12) == "(a + b)"
    assert wrap("a * b", 12) == "a * b"
    assert wrap("-1.0", ATOM) == "(-1.0)"
    assert wrap("np.exp(x)", ATOM) == "np.exp(x)"


@pytest.mark.parametrize("value", [-1.0, np.pi / 2, 2 * np.pi, -np.pi / 3, np.inf, -np.inf,
                                   np.nan, 3, -2, True, 0.5])
def test_literal_precedence_is_its_syntax(value):
    text = const_text(value, Aval((), np.dtype(type(value)), True))
    assert prec_of(text) == TABLE.get(type(getattr(ast.parse(text, mode="eval").body, "op",
                                                   None)), ATOM)


@pytest.mark.parametrize("name", sorted(n for n, p in REGISTRY.items()
                                        if isinstance(p.numpy, str)
                                        and not re.search(r"\{[a-z_]+\}", p.numpy)))
def test_record_prec_matches_its_template(name):
    prim = REGISTRY[name]
    n = len(set(re.findall(r"\{(\d+)\}", prim.numpy)))
    text = prim.numpy.format(*[f"a{i}" for i in range(n)])
    assert prim.prec == prec_of(text), f"{name}: {text!r}"


def test_callable_emitters_get_atoms_wrapped_by_precedence():
    prim = REGISTRY["sum"]
    avals = [Aval((3,), np.dtype("float64"))]
    out = prim.emit(["a + b"], "out", avals, Aval((), np.dtype("float64")), {"axis": (0,),
                                                                             "keepdims": False})
    assert "(a + b)" in (out if isinstance(out, str) else "\n".join(out))
