"""graphc's exceptions, and where in the user's code they point.

Every error graphc raises for a user mistake is a :class:`GraphcError` and also
the matching built-in (``TypeError``, ``ValueError``, ``IndexError``), so code
that already catches NumPy's errors keeps working.  Messages name the user's
``file.py:LINE`` (the innermost frame outside graphc and NumPy) and say how to
fix the problem.
"""
from __future__ import annotations

import linecache
import os
import re
import sys

from .cells import display_where

_GRAPHC_DIR = os.path.dirname(os.path.abspath(__file__))
_NUMPY_DIR = None


def _numpy_dir():
    global _NUMPY_DIR
    if _NUMPY_DIR is None:
        import numpy
        _NUMPY_DIR = os.path.dirname(os.path.abspath(numpy.__file__))
    return _NUMPY_DIR


def _is_internal(filename: str) -> bool:
    # Frames of graphc itself, of NumPy's Python wrappers (np.sum -> fromnumeric)
    # and of importlib/functools plumbing are never "the user's line".
    if filename.startswith(_GRAPHC_DIR + os.sep) and os.sep + "examples" + os.sep not in filename:
        return True
    if filename.startswith(_numpy_dir() + os.sep):
        return True
    return filename.startswith("<frozen ") or filename.endswith(os.sep + "functools.py")


# Code objects of graphc's entry points (the command line's ``main``).  Frames
# older than one of these are the launcher's (bin/graphc, runpy, a test runner),
# never the user's code: the search stops there and finds no user frame.
ENTRY_POINTS: set = set()


# {file name: _is_internal(file name)}: user_frame runs for every traced node (bounded).
_INTERNAL_FILES: dict = {}


def user_frame(depth: int = 1):
    """The innermost frame that belongs to the user's code, or None."""
    frame = sys._getframe(depth)
    files = _INTERNAL_FILES
    while frame is not None:
        code = frame.f_code
        internal = files.get(code.co_filename)
        if internal is None:
            if len(files) >= 4096:
                files.clear()
            internal = files[code.co_filename] = _is_internal(code.co_filename)
        if not internal:
            break
        if code in ENTRY_POINTS:
            return None
        frame = frame.f_back
    return frame


def user_where(depth: int = 1) -> str | None:
    """``"path/to/file.py:LINE"`` of the user's innermost frame, or None."""
    frame = user_frame(depth + 1)
    if frame is None:
        return None
    key = (frame.f_code.co_filename, frame.f_lineno)
    text = _WHERES.get(key)          # (one text per user line: built once, shared by its nodes)
    if text is None:
        if len(_WHERES) >= 4096:
            _WHERES.clear()
        text = _WHERES[key] = where_text(*key)
    return text


_WHERES: dict = {}


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def where_text(filename: str, line: int) -> str:
    """``"file:LINE"``; control characters in the file name become spaces.

    File names are user-controlled (``compile(src, "x\\nimport os", ...)``)
    and ``where`` ends up in generated comments, which must stay one line.
    """
    if not filename.isprintable():
        filename = _CONTROL.sub(" ", filename)
    return f"{filename}:{line}"


def source_line(where: str | None) -> str | None:
    """The stripped source text at ``where`` (``"file:line"``), if readable."""
    if not where:
        return None
    path, _, line = where.rpartition(":")
    try:
        text = linecache.getline(path, int(line)).strip()
    except (ValueError, OSError):
        return None
    return text or None


class GraphcError(Exception):
    """Base class of every error graphc raises for a user mistake.

    Parameters
    ----------
    message : str
        What went wrong, in the user's terms.
    where : str, optional
        ``"file.py:LINE"`` in the user's code; found from the stack when omitted.
    hint : str, optional
        How to fix it.
    """

    default_hint: str | None = None   # used when a raise site gives no hint

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        if where is None:
            where = user_where(2)
        if hint is None:
            hint = self.default_hint
        self.where = where
        self.hint = hint
        self.message = message
        text = f"{display_where(where)}: {message}" if where else message
        line = source_line(where)
        if line:
            text += f"\n    {line}"
        if hint:
            text += f"\n  Hint: {hint}"
        super().__init__(text)


class TracingError(GraphcError, TypeError):
    """A traced value was used in a way that needs a concrete value."""


class ControlFlowError(TracingError):
    """Python control flow, ``bool()``, ``float()`` or ``int()`` on a traced value."""


class InPlaceError(GraphcError, TypeError):
    """Writing into a traced array."""


class UnsupportedError(GraphcError, TypeError):
    """A NumPy function, argument or dtype that graphc does not support."""

    default_hint = ("write it with the NumPy functions and dtypes graphc supports "
                    "(docs/ops.md lists them; docs/errors.md lists the common cases)")


class ShapeError(GraphcError, ValueError):
    """Shapes that do not fit together (broadcasting, matmul, reshape ...)."""

    default_hint = ("check the shapes in the message: reshape, transpose or add an axis "
                    "(x[:, None]) so they fit")


class IndexError_(GraphcError, IndexError, ValueError):
    """An index out of range for a traced array's static shape.

    An ``IndexError``, as NumPy's, and a ``ValueError``, as every other error about the
    user's arguments (API §6), as :class:`AxisError` is."""

    default_hint = ("shapes are static while graphc traces: index within x.shape "
                    "(negative indices count from the end)")


IndexError_.__name__ = IndexError_.__qualname__ = "GraphcIndexError"


class GradError(GraphcError, TypeError, ValueError):
    """Bad use of ``grad`` / ``value_and_grad``.

    Both a ``TypeError`` and a ``ValueError``: JAX raises ``TypeError`` for a
    non-scalar output and ``ValueError`` for a bad ``argnums``; code written for
    either keeps working.
    """


class EscapedTracerError(TracingError):
    """A traced value used after its trace ended."""


class SignatureError(GraphcError, TypeError):
    """Arguments that do not fit: a call the function's Python signature rejects,
    a :class:`graphc.Spec` placeholder passed to a real call, or something
    that is not callable given to a transform."""


class OptionError(GraphcError, ValueError):
    """A bad option value (``cache_size=0``, an unknown drawing option ...)."""


class ExportError(GraphcError, ValueError):
    """``graphc.export`` cannot write its file (it exists, or the path is not writable)."""


class RenderError(GraphcError, RuntimeError):
    """``graphc.render`` cannot draw: Graphviz's ``dot`` is missing or failed.

    A ``RuntimeError`` rather than a ``TypeError``/``ValueError``: the user's
    function and arguments are fine, the environment is not.
    """


class RenderPathError(RenderError, ValueError):
    """``graphc.render`` or ``graphc.report`` will not write its file: it exists and graphc
    did not write it (``overwrite=True`` replaces it), or it is a directory, a link, a
    FIFO or a device.  A ``ValueError`` as well: the path argument is the mistake."""


class NonFiniteError(GraphcError, ValueError):
    """``check_finite=True``: a result was NaN or infinite.

    Attributes
    ----------
    node : str
        The user's name of the value that first became non-finite.
    op : str
        The primitive that produced it (``"input"`` when the argument itself
        was non-finite).
    """

    def __init__(self, message, *, node=None, op=None, **kwargs):
        self.node = node
        self.op = op
        super().__init__(message, **kwargs)


class UnsupportedAttributeError(UnsupportedError, AttributeError):
    """An ``ndarray`` attribute or method that traced values do not have.

    Also an ``AttributeError``, so ``hasattr(x, "tolist")`` and duck typing
    keep working on traced values.
    """


class IntegerOverflowError(GraphcError, OverflowError):
    """A Python ``int`` too large for int64 met a traced integer array.

    An ``OverflowError``, as NumPy raises for ``np.arange(3) * 2**70``.
    """

    default_hint = "pass the number as a float (e.g. float(n)) or keep it within int64"


import numpy as _np  # noqa: E402
from numpy.exceptions import AxisError as _NumpyAxisError  # noqa: E402  (numpy >= 1.25)


class AxisError(ShapeError, _NumpyAxisError):
    """An ``axis`` out of range for the array's number of dimensions.

    Also NumPy's ``numpy.exceptions.AxisError`` (so a ``ValueError`` and an
    ``IndexError``), which NumPy raises for the same mistake: code that
    catches NumPy's error keeps working.
    """

    default_hint = ("axes count from 0 to ndim - 1 (negative ones from -ndim to -1); "
                    "check the array's x.ndim")

    def __init__(self, message, *, axis=None, ndim=None, **kwargs):
        super().__init__(message, **kwargs)
        # NumPy's AxisError.__init__ does not set ``args``; keep the full text there
        # (pickling, logging) and expose the axis and ndim as NumPy does.
        self.args = (self._msg,)
        self.axis, self.ndim = axis, ndim

    def __str__(self):
        return self._msg


class LinAlgError(ShapeError, _np.linalg.LinAlgError):
    """An array ``np.linalg`` refuses for its shape (not 2-d, not square), found while tracing.

    Also NumPy's ``numpy.linalg.LinAlgError``, which NumPy raises for the same input: code
    that catches NumPy's error keeps working.  (A singular matrix is found only when the
    generated code runs: that is NumPy's own ``LinAlgError``.)
    """

    default_hint = "np.linalg takes (..., M, M) stacks of square matrices"


# --- warnings --------------------------------------------------------------------------
class GraphcWarning(UserWarning):
    """A warning about code that works but could be written better for graphc
    (a Python loop unrolled into thousands of nodes, a guard that keeps failing).

    Examples
    --------
    >>> import warnings, numpy as np, graphc
    >>> def f(x):
    ...     for _ in range(2500):          # a Python loop: unrolled into the graph
    ...         x = x * 1.0001
    ...     return x
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = graphc.trace(f, np.ones(2))
    >>> [w.category.__name__ for w in caught]
    ['GraphcWarning']
    """


def warn_at(message: str, where: str | None, category=GraphcWarning) -> None:
    """Warn with ``message``, attributed to the user's ``where`` (``"file.py:LINE"``)."""
    import warnings
    filename, _, line = (where or "").rpartition(":")
    if filename and line.isdigit():
        warnings.warn_explicit(f"{where}: {message}", category, filename, int(line))
    else:
        warnings.warn(message, category, stacklevel=3)


_UNROLL_WARNED: set = set()


def warn_unrolled(where: str | None, n: int) -> None:
    """The hint for a Python loop unrolled while tracing (``n`` nodes from one line).

    Once per line and process, not once per trace: a function compiled for five
    signatures (or traced by ``trace`` and then ``grad``) says it once.  (Python's own
    once-per-location registry is reset by every ``warnings.catch_warnings``.)
    """
    if where in _UNROLL_WARNED:
        return
    _UNROLL_WARNED.add(where)
    warn_at(f"this line made {n} nodes in one trace: a Python loop over it is unrolled into "
            "the graph, and the generated code grows with the trip count. Hint: write the loop "
            "with graphc.scan(f, init, xs) or graphc.fori_loop(lower, upper, body_fn, init_val) "
            "to keep it rolled (a Python for/while in the generated code)", where)
