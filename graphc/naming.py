"""Readable, unique, safe Python names for graph values.

Names come from the user's variables where known, from a composite's name
hint, from the primal for adjoints (``d_<name>``) and otherwise from the op
(``matmul``, ``matmul_1``).  Every name is sanitized: no user-controlled text
ever becomes anything but a plain ASCII identifier, and keywords, builtins
and ``np`` are never shadowed.
"""
from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {"np", "numpy"}

def _ascii(text: str) -> str:
    """Spell non-ASCII letters in ASCII: ``σ`` -> ``sigma``, ``é`` -> ``e``.

    Greek is common in maths code (``σ``, ``μ``, ``Δt``); dropping it would
    leave ``v``, ``v_1`` ... where the user wrote a meaningful name.
    """
    if text.isascii():
        return text
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if ch.isascii():
            out.append(ch)
        elif unicodedata.combining(ch):
            continue
        else:
            uname = unicodedata.name(ch, "")
            if uname.startswith(("GREEK SMALL LETTER ", "GREEK CAPITAL LETTER ")):
                word = uname.rsplit(" ", 1)[-1].lower()
                out.append("_" + (word.capitalize() if "CAPITAL" in uname else word) + "_")
            else:
                out.append("_")
    return "".join(out)


def sanitize(text: str) -> str:
    """Turn arbitrary text into a plain ASCII identifier (never a keyword).

    The result matches ``[A-Za-z][0-9A-Za-z_]*``: it never starts with ``_``
    (generated helpers own that prefix), never shadows a keyword, builtin or
    ``np``, and ``sanitize(sanitize(t)) == sanitize(t)``.

    Examples
    --------
    >>> sanitize("x; import os"), sanitize("σ"), sanitize("np"), sanitize("lambda")
    ('x_import_os', 'sigma', 'np_', 'lambda_')
    """
    if type(text) is str:
        name = _SANITIZED.get(text)
        if name is not None:          # (a pure function of the text: cached, bounded)
            return name
        if len(_SANITIZED) >= 8192:
            _SANITIZED.clear()
        name = _SANITIZED[text] = _sanitize(text)
        return name
    return _sanitize(text)


_SANITIZED: dict = {}


def _sanitize(text) -> str:
    name = re.sub(r"[^0-9A-Za-z_]", "_", _ascii(str(text)))
    # Outer underscores go ("<lambda>" -> "lambda", "sum_" -> "sum"): the
    # leading one is reserved for generated helpers; names that collide once
    # stripped ("x" and "x_") are told apart by Namespace / unique_names.
    name = re.sub(r"__+", "_", name).strip("_") or "v"
    if name[0].isdigit():
        name = "v" + name
    if name in RESERVED:
        name += "_"
    return name


def display(text, limit: int = 80) -> str:
    """A one-line, quote-free rendering of user text for comments and docstrings.

    Function names and file names are user-controlled (``f.__name__`` can be
    set to anything); inside a generated comment or docstring a newline,
    quote or backslash could end it and start code.

    Examples
    --------
    >>> display("f(x)" + chr(10) + "import os")
    'f_x__import_os'
    """
    text = re.sub(r"[^0-9A-Za-z_<>.,:+\-]", "_", _ascii(str(text)))
    return text[:limit] or "f"


def unique_names(names) -> list:
    """Sanitized, pairwise distinct names, in order (``x``, ``x_`` -> ``x``, ``x_``)."""
    ns = Namespace()
    return [ns.new(n) for n in names]


class Namespace:
    """Hands out unique identifiers: ``base``, ``base_1``, ``base_2`` ..."""

    def __init__(self, taken=()):
        self._used = set(taken) | RESERVED
        self._count: dict[str, int] = {}

    def reserve(self, name: str) -> None:
        self._used.add(name)

    def new(self, base: str) -> str:
        base = sanitize(base)
        if base not in self._used:
            self._used.add(base)
            return base
        i = self._count.get(base, 0)
        stem = base.rstrip("_") or base     # sum_ -> sum_1, not sum__1
        while True:
            i += 1
            cand = f"{stem}_{i}"
            if cand not in self._used:
                self._count[base] = i
                self._used.add(cand)
                return cand
