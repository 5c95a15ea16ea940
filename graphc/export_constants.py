"""Large constants of an exported module go to a ``.npz`` file beside it (API §4).

Generated code writes an array constant of more than a few numbers as one module-level
line, ``W = np.frombuffer(bytes.fromhex('…'), dtype='<f8').reshape((400, 500)).astype(np.float64)``
(:func:`graphc.literals.const_text`): exact, but a 1.6 MB array is a 3.2 MB line.  When
:func:`graphc.export` writes a module, each such line holding more than
:data:`LIMIT` bytes becomes ``W = _CONSTANTS['W']``, read once from ``f_grad.npz`` beside
``f_grad.py``; the arrays are the same bits.  The module still imports only NumPy.

Examples
--------
>>> import numpy as np
>>> arr = np.arange(3000.0).reshape(60, 50)
>>> line = "W = " + __import__("graphc.literals", fromlist=["x"]).const_text(
...     arr, __import__("graphc.primitive", fromlist=["x"]).Aval(arr.shape, arr.dtype))
>>> text, arrays = split_constants("import numpy as np\\n\\n" + line + "\\n", "f.py")
>>> text.splitlines()[-1], np.array_equal(arrays["W"], arr)
("W = _CONSTANTS['W']  # float64[60,50], from f.npz", True)
"""
from __future__ import annotations

import io
import re

import numpy as np

__all__ = ["LIMIT", "split_constants", "npz_bytes"]

#: A constant of more bytes than this leaves the module for the ``.npz``.
LIMIT = 8192

_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*) = np\.frombuffer\(bytes\.fromhex\('(?P<hex>[0-9a-f]*)'\), "
                   r"dtype='(?P<dt>[<>|=]?\w+)'\)\.reshape\((?P<shape>\([0-9, ]*\))\)"
                   r"\.astype\(np\.(?P<np>\w+)\)$")


def _array(m) -> np.ndarray:
    shape = tuple(int(d) for d in m["shape"].strip("()").split(",") if d.strip())
    raw = np.frombuffer(bytes.fromhex(m["hex"]), dtype=m["dt"]).reshape(shape)
    return raw.astype(np.dtype(m["np"]))


def split_constants(source: str, filename: str) -> tuple[str, dict]:
    """``(source without its large constant lines, {name: array})`` for a module that will
    be written as ``filename``; the arrays go to ``filename``'s ``.npz``."""
    stem = filename.rpartition(".")[0] or filename
    npz = stem + ".npz"
    lines, arrays, first = source.split("\n"), {}, None
    for i, line in enumerate(lines):
        m = _LINE.match(line) if len(line) > 2 * LIMIT else None
        if m is None:
            continue
        arr = _array(m)
        arrays[m["name"]] = arr
        shape = ",".join(str(d) for d in arr.shape)
        lines[i] = f"{m['name']} = _CONSTANTS[{m['name']!r}]  # {arr.dtype.name}[{shape}], from {npz}"
        first = i if first is None else first
    if not arrays:
        return source, {}
    # read once, beside this file (__file__ ends with its own name: no os import needed)
    load = [f"# Large constants: {npz}, beside this module (graphc.export wrote both).",
            f"with np.load(__file__[:-{len(filename)}] + {npz!r}) as _npz:",
            "    _CONSTANTS = {name: _npz[name] for name in _npz.files}"]
    lines[first:first] = load
    return "\n".join(lines), arrays


def npz_bytes(arrays: dict) -> bytes:
    """The ``.npz`` file's bytes (``np.savez``: no pickles, read with ``np.load``)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
