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

__all__ = ["LIMIT", "split_constants", "npz_bytes", "npz_name", "checksum", "LOAD_HELPERS"]

#: A constant of more bytes than this leaves the module for the ``.npz``.
LIMIT = 8192

_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*) = np\.frombuffer\(bytes\.fromhex\('(?P<hex>[0-9a-f]*)'\), "
                   r"dtype='(?P<dt>[<>|=]?\w+)'\)\.reshape\((?P<shape>\([0-9, ]*\))\)"
                   r"\.astype\(np\.(?P<np>\w+)\)$")


def _array(m) -> np.ndarray:
    shape = tuple(int(d) for d in m["shape"].strip("()").split(",") if d.strip())
    raw = np.frombuffer(bytes.fromhex(m["hex"]), dtype=m["dt"]).reshape(shape)
    return raw.astype(np.dtype(m["np"]))


#: The generated module's helpers: it reads the ``.npz`` once and checks that each constant
#: is the one it was exported with (dtype, shape and a checksum of its bytes), so a stale or
#: edited ``.npz`` is a ValueError, never other numbers.  The checksum is computed by this
#: same text at export time (:func:`checksum`).
LOAD_HELPERS = '''
def _constants(path, expected):
    """The large constants, from the .npz graphc.export wrote beside this module."""
    with np.load(path) as npz:
        found = {name: npz[name] for name in npz.files}
    for name, (dtype, shape, check) in expected.items():
        a = found.get(name)
        if a is None or a.dtype.str != dtype or a.shape != shape or _checksum(a) != check:
            raise ValueError(f"{path} does not hold the constant {name} this module was "
                             "exported with; export the module again (its .py and .npz "
                             "belong together)")
    return found


def _checksum(a):
    """A number from the bytes of a (words weighted by their position)."""
    raw = np.ascontiguousarray(a).tobytes()
    words = np.frombuffer(raw + bytes(-len(raw) % 8), dtype=np.uint64)
    weights = np.arange(1, 2 * words.size, 2, dtype=np.uint64)
    return int((words * weights).sum(dtype=np.uint64) ^ words.sum(dtype=np.uint64))
'''

_NS: dict = {"np": np}
exec(LOAD_HELPERS, _NS)
checksum = _NS["_checksum"]


def npz_name(filename: str) -> str:
    """The ``.npz`` beside a module file: ``f_grad.py`` -> ``f_grad.npz``."""
    return (filename.rpartition(".")[0] or filename) + ".npz"


def split_constants(source: str, filename: str) -> tuple[str, dict]:
    """``(source without its large constant lines, {name: array})`` for a module that will
    be written as ``filename``; the arrays go to ``filename``'s ``.npz``."""
    npz = npz_name(filename)
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
    expected = ", ".join(f"{n!r}: ({a.dtype.str!r}, {a.shape!r}, {checksum(a)})"
                         for n, a in arrays.items())
    # read once, beside this file (__file__ ends with its own name: no os import needed)
    load = [f"# Large constants: {npz}, beside this module (graphc.export wrote both).",
            f"_CONSTANTS = _constants(__file__[:-{len(filename)}] + {npz!r}, {{{expected}}})"]
    lines[first:first] = load
    # the helpers before their first use, after the imports
    lines[first:first] = LOAD_HELPERS.strip("\n").splitlines() + ["", ""]
    return "\n".join(lines), arrays


def npz_bytes(arrays: dict) -> bytes:
    """The ``.npz`` file's bytes (``np.savez``: no pickles, read with ``np.load``)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
