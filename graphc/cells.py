"""Notebook cells by their names: ``In[3]:5`` instead of ``/tmp/ipykernel_123/1125448842.py:5``.

IPython (and ipykernel) compile each cell under a temporary file name and keep
a map from it to the cell's execution count; IPython's own tracebacks print
``Cell In[3], line 5`` from it.  graphc's messages, traces and generated-code
comments use the same name.  Outside IPython, and for ordinary files, the
file name is used as it is.
"""
from __future__ import annotations

import sys

__all__ = ["cell_label", "display_where"]


def cell_label(path: str) -> str | None:
    """``"In[3]"`` when ``path`` is the file name IPython compiled a cell under, else None."""
    ipython = sys.modules.get("IPython")
    if ipython is None or not path:
        return None
    try:
        shell = ipython.get_ipython()
        fmt = getattr(getattr(shell, "compile", None), "format_code_name", None)
        data = fmt(path) if fmt is not None else None
    except Exception:       # an IPython without the map: keep the file name
        return None
    if not data:
        return None
    return str(data[1]).replace(" ", "")


def display_where(where: str | None) -> str | None:
    """``"file.py:LINE"`` as shown to the user: a notebook cell as ``In[3]:5``.

    Examples
    --------
    >>> display_where("/home/me/model.py:12")
    '/home/me/model.py:12'
    """
    if not where:
        return where
    path, _, line = where.rpartition(":")
    label = cell_label(path)
    return f"{label}:{line}" if label else where
