"""Python operator precedence: the one table generated code is parenthesized by.

A primitive's record gives the precedence of the expression its template
makes (``prec``, numbered as in :data:`TABLE`); the precedence of any other
expression text (a constant's literal, an argument handed to an emitter) is
read from its syntax tree, never guessed from its characters.
"""
from __future__ import annotations

import ast
from functools import lru_cache

__all__ = ["ATOM", "TABLE", "prec_of", "wrap"]

ATOM = 100     # names, calls, attributes, subscripts, literals: never need parentheses

# Python's precedence, lowest first (the language reference's order).
TABLE = {
    ast.Lambda: 1, ast.IfExp: 2, ast.Or: 3, ast.And: 4, ast.Not: 5, ast.Compare: 6,
    ast.BitOr: 7, ast.BitXor: 8, ast.BitAnd: 9, ast.LShift: 10, ast.RShift: 10,
    ast.Add: 11, ast.Sub: 11,
    ast.Mult: 12, ast.Div: 12, ast.FloorDiv: 12, ast.Mod: 12, ast.MatMult: 12,
    ast.USub: 13, ast.UAdd: 13, ast.Invert: 13, ast.Pow: 14,
}


@lru_cache(maxsize=4096)
def prec_of(text: str) -> int:
    """Precedence of the expression ``text`` (0 when it is not one expression)."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return 0
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp)):
        return TABLE[type(node.op)]
    return TABLE.get(type(node), ATOM)


def wrap(text: str, min_prec: int) -> str:
    """``text``, parenthesized when its precedence is below ``min_prec``."""
    return text if prec_of(text) >= min_prec else f"({text})"
