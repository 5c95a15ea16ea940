"""Compiled callables for the ``"array-api"`` target.

:class:`XpCompiled` is a :class:`graphc.compiled.Compiled` whose code comes
from :mod:`graphc.codegen_xp` and whose arguments may be arrays of any
array-API namespace (PyTorch tensors, JAX arrays, also under ``jax.jit``,
CuPy arrays, ``array_api_strict`` arrays, NumPy arrays).  The cache key and the
trace see each foreign array as a :class:`graphc.Spec` of its shape and dtype;
the generated function resolves the namespace from the arrays (or ``xp=``).
"""
from __future__ import annotations

import threading

import numpy as np

from .capture import Spec
from .compiled import Compiled, _key_of, _Traced
from .errors import ControlFlowError, OptionError, UnsupportedError

__all__ = ["XpCompiled", "np_dtype_of", "keyable"]

_NAMES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64",
          "uint32", "uint16", "uint8", "bool", "complex128", "complex64")


def np_dtype_of(x) -> np.dtype:
    """The NumPy dtype of an array of any namespace (torch.float32 -> float32)."""
    dt = x.dtype
    if isinstance(dt, np.dtype):
        return dt
    text = str(dt).rsplit(".", 1)[-1]       # torch.float32, array_api_strict.float32
    if text in _NAMES:
        return np.dtype(text)
    raise UnsupportedError(f"an argument of dtype {dt} cannot be used by graphc",
                           hint="pass arrays of a floating, integer or boolean dtype")


def keyable(x):
    """``x`` with each non-NumPy array replaced by a Spec of its shape and dtype."""
    t = type(x)
    if t is np.ndarray or t in (float, int, bool, str) or x is None or isinstance(x, np.generic):
        return x
    if t is dict:
        return {k: keyable(v) for k, v in x.items()}
    if t is list or t is tuple:
        return t(keyable(v) for v in x)
    if hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, Spec) \
            and not isinstance(x, np.dtype):
        try:
            shape = tuple(int(d) for d in x.shape)
        except TypeError:
            raise UnsupportedError(f"an argument of shape {x.shape} has unknown sizes",
                                   hint="pass arrays of known shape") from None
        return Spec(shape, np_dtype_of(x))
    return x


_RAW = threading.local()


def _same_specs(raw, keyed):
    try:
        return _key_of(keyable(raw)) == _key_of(keyed)
    except Exception:
        return False


def on_host(x):
    """``x`` with each non-NumPy array copied to a NumPy array (for tracing only)."""
    t = type(x)
    if t is dict:
        return {k: on_host(v) for k, v in x.items()}
    if t is list or t is tuple:
        return t(on_host(v) for v in x)
    if keyable(x) is x or isinstance(x, Spec):
        return x
    if hasattr(x, "detach"):                   # torch (any device)
        return x.detach().cpu().numpy()
    if type(x).__module__.startswith("array_api_strict"):
        return np.asarray(x._array)
    try:
        return np.asarray(x)
    except Exception:                          # a tracer (jax.jit), CuPy: its Spec
        get = getattr(x, "get", None)          # CuPy's copy to the host
        return get() if callable(get) else keyable(x)


def _all_numpy(args):
    """No array of another namespace anywhere in ``args`` (dicts, lists, tuples too):
    the call keys on the arguments as they are, without ``keyable``'s copies."""
    for x in args:
        t = type(x)
        if t is dict:
            if not _all_numpy(x.values()):
                return False
        elif t is list or t is tuple:
            if not _all_numpy(x):
                return False
        elif t is not np.ndarray and keyable(x) is not x:
            return False
    return True


class XpCompiled(Compiled):
    """A compiled function whose generated code targets the array API standard."""

    target = "array-api"

    def __init__(self, fn, kind="compile", argnums=0, has_aux=False, *, cache_size,
                 check_finite=False):
        super().__init__(fn, kind, argnums, has_aux, cache_size=cache_size)
        self.check_finite = bool(check_finite)
        _require_compat()

    def _generate(self):
        from . import codegen_xp
        return codegen_xp.generate_module

    def _xp_entry(self, args, kwargs):
        if not _all_numpy(args) or kwargs:
            args, kwargs = keyable(args), keyable(kwargs)
        return self._entry(tuple(args), kwargs)

    def __call__(self, *args, xp=None, **kwargs):
        _RAW.args = (args, kwargs)      # the arrays themselves, for a trace (see _build)
        try:
            entry = self._xp_entry(args, kwargs)
        except _Traced:             # inside another graphc transform: record into its trace
            return self._inline(args, kwargs)
        finally:
            _RAW.args = None
        if entry.closure:
            out = self._call_closed(entry, args, kwargs, xp)
        else:
            out = entry.fn(*args, xp=xp, **kwargs)
        if self.check_finite:
            self._check_finite(out, args, kwargs)
        return out

    def _check_finite(self, out, args, kwargs):
        """check_finite=True: the results (copied to NumPy) free of NaN and Inf, else the
        NumPy target's explanation (the first line that made one, from the arguments
        copied to NumPy).  A value without one yet (under jax.jit) is not checked."""
        from .interpret import all_finite, explain_nonfinite
        from .pytree import flatten
        from .signature import from_function
        from .tracebacks import hidden_frames
        leaves = [on_host(x) for x in flatten(out)[0]]
        if any(isinstance(x, Spec) for x in leaves) or all_finite(leaves):
            return
        args, kwargs = on_host(args), on_host(kwargs)
        entry = self._entry(tuple(args), kwargs)
        params, values = from_function(self._fn, args, kwargs)
        with hidden_frames():         # the traceback: the user's call alone
            raise explain_nonfinite(entry.graph, flatten(tuple(values))[0], self.__name__)

    def _call_closed(self, entry, args, kwargs, xp):
        """``entry`` called with the current contents of the arrays it closes over (the
        module converts them to the call's namespace); a closed-over array that changed
        shape or dtype, or is no NumPy array any more, makes the code stale: trace again."""
        current = closed_over(entry)
        if current is None:
            self.cache_clear()
            _RAW.args = (args, kwargs)
            try:
                entry = self._xp_entry(args, kwargs)
            finally:
                _RAW.args = None
            current = closed_over(entry)
            if current is None:
                raise ValueError(f"{self.__name__}: a closed-over array changed while it was "
                                 "being compiled")
        return entry.fn(*args, xp=xp, **kwargs, **current)

    def _build(self, args, kwargs):
        """Trace with each foreign array as a Spec of its shape and dtype; when the
        function decides on a value (an `if`: a guard), once more with the arrays' values
        (copied to NumPy, once per trace), so the guard is recorded as on the NumPy target."""
        kwargs = {k: v for k, v in kwargs.items() if k != "xp"}   # (a guard path's retrace)
        try:
            return super()._build(keyable(args), keyable(kwargs))
        except ControlFlowError:
            raw = getattr(_RAW, "args", None)
            if raw is not None and _same_specs(raw, (args, kwargs)):
                args, kwargs = raw
            hosted = on_host(args), on_host(kwargs)
            if _key_of(hosted) == _key_of((keyable(args), keyable(kwargs))):
                raise                   # no values to be had (a tracer, a Spec)
            return super()._build(*hosted)

    def source(self, *args, **kwargs) -> str:
        return self._xp_entry(args, kwargs).source

    def graph(self, *args, **kwargs):
        return self._xp_entry(args, kwargs).graph


def closed_over(entry):
    """{parameter: current array} of the arrays ``entry`` closes over, or None when one
    no longer has the shape and dtype it was traced with."""
    current = {}
    for kw, cell, (shape, dtype) in entry.closure:
        try:
            value = cell.cell_contents
        except ValueError:
            return None
        if type(value) is not np.ndarray or value.shape != shape or value.dtype != dtype:
            return None
        current[kw] = value
    return current


def _require_compat():
    try:
        import array_api_compat  # noqa: F401
    except ImportError:
        raise OptionError('target="array-api" needs the array-api-compat package',
                          hint="pip install array-api-compat") from None
