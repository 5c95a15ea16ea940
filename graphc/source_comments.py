"""The comments of generated code: the user's source line and file:line of a value.

Every statement of generated code ends with a comment saying where its value
came from; each backward block starts with the forward line it differentiates.
"""
from __future__ import annotations

import io
import os
import re
import tokenize

from .cells import cell_label
from .errors import source_line

__all__ = ["COMMENT_COL", "source_text", "cached_source_text", "where_short", "with_comment"]

COMMENT_COL = 44


def where_short(where):
    """``file.py:LINE`` of a node's ``where`` (the directory dropped; a notebook
    cell as ``In[3]:LINE``, graphc/cells.py)."""
    if not where:
        return ""
    path, _, line = where.rpartition(":")
    return f"{cell_label(path) or os.path.basename(path)}:{line}"


def with_comment(code, text):
    """``code`` with ``# text`` aligned at column COMMENT_COL."""
    pad = max(COMMENT_COL - len(code), 2)
    return f"{code}{' ' * pad}# {text}"


def source_text(where):
    """The user's source line at ``where``, on one line and without its own comment."""
    text = source_line(where)
    if not text:
        return text
    # A comment must stay one line whatever the user's file holds (\r, \f ...).
    text = re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", text)
    return _without_comment(text)


def cached_source_text(where, cache: dict):
    """:func:`source_text`, remembered in ``cache`` (one dict per generated module: the
    file does not change while one module is written)."""
    if where not in cache:
        cache[where] = source_text(where)
    return cache[where]


def _without_comment(line):
    """The line without its trailing ``# comment`` (a '#' inside a string stays)."""
    if "#" not in line:
        return line
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return line[:tok.start[1]].rstrip() or line
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass        # part of a multi-line statement: keep it as it is
    return line
