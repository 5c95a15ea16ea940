"""The public API: trace, grad, value_and_grad, compile, export, render, scope, Spec, example.

Thin, documented entry points.  The work lives below: :mod:`graphc.capture`
turns a function into a graph, :mod:`graphc.transforms` differentiates it
inside the trace, :mod:`graphc.compiled` caches generated code per signature
and :mod:`graphc.argnums` decides which arguments are differentiated.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import pathlib

from . import errors
from .capture import Spec, gc_paused, live, trace_into
from .compiled import DEFAULT_CACHE_SIZE, Compiled, make_compiled
from .errors import ExportError, OptionError
from .ir import Graph
from .tracebacks import hidden_frames
from .tracing import current_trace

__all__ = ["trace", "grad", "value_and_grad", "compile", "export", "render", "scope", "Spec",
           "example", "Compiled", "DEFAULT_CACHE_SIZE"]


def example(*args, **kwargs):
    """Decorator: attach example inputs to a function, for the CLI and docs.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> @graphc.example(1.5, 0.5)
    ... def f(w1, w2):
    ...     return w1 / w2
    >>> f.__graphc_example__
    ((1.5, 0.5), {})
    """
    def deco(fn):
        fn.__graphc_example__ = (args, kwargs)
        return fn
    return deco


def trace(fn, *args, values=False, **kwargs) -> Graph:
    """Trace ``fn`` on example arguments into a :class:`graphc.Graph`.

    Parameters
    ----------
    fn : callable
        A Python function over NumPy values.
    *args, **kwargs
        Example arguments (arrays, Python floats, pytrees of them, or
        :class:`Spec` placeholders).  Python ints, bools and strings are static.
    values : bool, default False
        Also compute every value for these arguments: ``print`` then shows each
        line with its value (scalars in full, arrays summarized); for
        ``graphc.grad(f)`` the backward pass shows each adjoint (see
        :meth:`graphc.Compiled.trace`).  ``values`` is graphc's keyword: it is
        never passed to ``fn``.

    Returns
    -------
    Graph
        The evaluation trace; ``print(graph)`` shows one line per operation.
        With ``values=True`` a :class:`graphc.trace_table.TraceTable`, whose
        ``.rows()`` give the table as data.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(w1, w2):
    ...     z1 = w1 / w2
    ...     return np.exp(z1)
    >>> print(graphc.trace(f, 1.5, 0.5))  # doctest: +ELLIPSIS
    f(w1: f64[], w2: f64[]):
        z1 = w1 / w2 ...
        exp = np.exp(z1) ...
        return exp
    >>> print(graphc.trace(f, 1.5, 0.5, values=True))  # doctest: +ELLIPSIS
    f(w1: f64[], w2: f64[]):
        w1                                          # f64[]  argument       = 1.5
        w2                                          # f64[]  argument       = 0.5
        z1 = w1 / w2                                # f64[]  ...            = 3.0
        exp = np.exp(z1)                            # f64[]  ...            = 20.085536923187668
        return exp
    """
    with hidden_frames():
        _own_keyword("graphc.trace", "values", values, bool, "values=True or values=False")
        if isinstance(fn, Compiled):
            if values:
                return fn.trace(*args, values=True, **kwargs)
            return fn.graph(*args, **kwargs)
        if not callable(fn):
            raise errors.SignatureError(f"graphc.trace needs a function to trace, got "
                                        f"{type(fn).__name__} {fn!r:.40}",
                                        hint="pass the function first, then its arguments: "
                                             "graphc.trace(f, x)")
        with gc_paused():
            graph = trace_into(fn, args, kwargs, lambda a, k: live(fn)(*a, **k))
        if values:
            from .trace_display import with_values
            return with_values(graph, fn, args, kwargs)
        return graph


def _own_keyword(what, name, value, types, example):
    """An OptionError for a value of graphc's own keyword ``name`` that it cannot take: the
    keyword is never passed to the user's function (a parameter of that name keeps its
    default), so a value meant for it would otherwise give a confusing error later."""
    if not isinstance(value, types) or isinstance(value, bool) and types is not bool:
        raise OptionError(f"{what}({name}={value!r:.60}): {name}= is graphc's own keyword, not "
                          "an argument of your function", hint=f"pass {example}; a parameter of "
                          f"your function named {name!r} cannot be set through {what}")


def compile(fn=None, *, check_finite=False, cache_size=DEFAULT_CACHE_SIZE, target="numpy"):
    """Compile ``fn`` into generated NumPy code (also usable as ``@graphc.compile``).

    Parameters
    ----------
    fn : callable, optional
        A Python function over NumPy values.  Omitted when used as
        ``@graphc.compile(check_finite=True)``: the decorator is returned.
    check_finite : bool, default False
        After each call, check that every floating result is free of NaN and
        infinity.  If one is not, the graph is evaluated again node by node
        and :class:`graphc.errors.NonFiniteError` (a ``ValueError``) names the
        first operation, in program order, that turned finite arguments into
        a NaN or an infinity and that the bad result depends on: the user's
        variable name, the op, the input ranges and the ``file.py:LINE``.  When
        the NaN/Inf came in with an argument, the error names that argument.
        Only results are checked: a NaN in an intermediate that does not reach
        a result (``np.where(x > 0, np.log(x), 0.0)``) is not an error.  Costs
        one finiteness test per result; calls inside another graphc transform
        are not checked.
    cache_size : int, default 64
        How many signatures to keep compiled (least recently used evicted).
    target : {"numpy", "array-api", "numba"}, default "numpy"
        NumPy code (imports only NumPy); functional code against the array API
        standard (2024.12) on the namespace of the arrays passed in (NumPy, PyTorch,
        JAX, CuPy, ...) or an explicit ``xp=`` keyword (docs/guide.md, "Array-API
        target"); or NumPy code with elementwise chains fused into ``numba.njit`` loops.

    Returns
    -------
    Compiled
        Called like ``fn``; ``.source(*args)`` and ``.graph(*args)`` show the
        generated module and the optimized graph for a signature.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> @graphc.compile
    ... def f(x):
    ...     return np.tanh(x) * 2.0
    >>> float(f(np.float64(0.5)))
    0.9242343145200195
    >>> "mul = np.tanh(x) * 2.0" in f.source(np.ones(3))   # the code for float64[3]
    True
    >>> @graphc.compile(check_finite=True)
    ... def g(x):
    ...     y = np.log(x)
    ...     return y * 2.0
    >>> with np.errstate(divide="ignore"):   # NumPy's own warning, not needed here
    ...     g(np.array([1.0, 0.0]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    graphc.errors.NonFiniteError: ...: g: y = np.log(x) became -inf (in 1 of 2 elements), ...
    """
    with hidden_frames():
        if fn is None:
            return functools.partial(compile, check_finite=check_finite, cache_size=cache_size,
                                     target=target)
        return make_compiled(fn, "compile", cache_size=cache_size, check_finite=check_finite,
                             target=target)


def grad(fn, argnums=0, has_aux=False, *, check_finite=False, cache_size=DEFAULT_CACHE_SIZE,
         target="numpy"):
    """The gradient of a scalar function, compiled per signature.

    Parameters
    ----------
    fn : callable
        Returns a real floating scalar (shape ``()``), or ``(scalar, aux)``
        when ``has_aux=True``.
    argnums : int or tuple of int, default 0
        Which positional arguments to differentiate (negative ones count from
        the end).  With an int the gradient comes back alone, with a tuple as
        a tuple in that order.
    has_aux : bool, default False
        As in JAX: ``grad(f, has_aux=True)(x)`` returns ``(grads, aux)``.
    check_finite : bool, default False
        After each call, check that every floating result is free of NaN and
        infinity.  If one is not, the graph is evaluated again node by node
        and :class:`graphc.errors.NonFiniteError` (a ``ValueError``) names the
        first operation, in program order, that turned finite arguments into
        a NaN or an infinity and that the bad result depends on: the user's
        variable name, the op, the input ranges and the ``file.py:LINE``.  When
        the NaN/Inf came in with an argument, the error names that argument.
        Only results are checked: a NaN in an intermediate that does not reach
        a result (``np.where(x > 0, np.log(x), 0.0)``) is not an error.  Costs
        one finiteness test per result; calls inside another graphc transform
        are not checked.
    cache_size : int, default 64
        How many signatures to keep compiled (least recently used evicted).
    target : {"numpy", "array-api", "numba"}, default "numpy"
        NumPy code (imports only NumPy); functional code against the array API
        standard (2024.12) on the namespace of the arrays passed in (NumPy, PyTorch,
        JAX, CuPy, ...) or an explicit ``xp=`` keyword (docs/guide.md, "Array-API
        target"); or NumPy code with elementwise chains fused into ``numba.njit`` loops.

    Returns
    -------
    Compiled
        Called with ``fn``'s arguments, returns the gradients, each with its
        argument's structure, shape and dtype.

    Raises
    ------
    graphc.errors.GradError
        ``argnums`` is not an int or a non-empty tuple of distinct ints (when
        the transform is made), or, at the first call, out of range, or it names
        an integer, boolean or static argument; the function does not return
        a real floating scalar.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> df = graphc.grad(lambda x: np.sum(x ** 2))
    >>> df(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    with hidden_frames():
        return make_compiled(fn, "grad", argnums, has_aux, cache_size=cache_size,
                             check_finite=check_finite, target=target)


def value_and_grad(fn, argnums=0, has_aux=False, *, check_finite=False,
                   cache_size=DEFAULT_CACHE_SIZE, target="numpy"):
    """Like :func:`grad` but returns ``(value, grads)``.

    Parameters
    ----------
    fn : callable
        Returns a real floating scalar (shape ``()``), or ``(scalar, aux)``
        when ``has_aux=True``.
    argnums : int or tuple of int, default 0
        Which positional arguments to differentiate, as for :func:`grad`.
    has_aux : bool, default False
        With ``has_aux=True`` the call returns ``((value, aux), grads)``.
    check_finite : bool, default False
        After each call, check that every floating result is free of NaN and
        infinity.  If one is not, the graph is evaluated again node by node
        and :class:`graphc.errors.NonFiniteError` (a ``ValueError``) names the
        first operation, in program order, that turned finite arguments into
        a NaN or an infinity and that the bad result depends on: the user's
        variable name, the op, the input ranges and the ``file.py:LINE``.  When
        the NaN/Inf came in with an argument, the error names that argument.
        Only results are checked: a NaN in an intermediate that does not reach
        a result (``np.where(x > 0, np.log(x), 0.0)``) is not an error.  Costs
        one finiteness test per result; calls inside another graphc transform
        are not checked.
    cache_size : int, default 64
        How many signatures to keep compiled (least recently used evicted).
    target : {"numpy", "array-api", "numba"}, default "numpy"
        NumPy code (imports only NumPy); functional code against the array API
        standard (2024.12) on the namespace of the arrays passed in (NumPy, PyTorch,
        JAX, CuPy, ...) or an explicit ``xp=`` keyword (docs/guide.md, "Array-API
        target"); or NumPy code with elementwise chains fused into ``numba.njit`` loops.

    Returns
    -------
    Compiled
        Called with ``fn``'s arguments, returns ``(value, grads)``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> value, g = graphc.value_and_grad(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0]))
    >>> float(value), g
    (5.0, array([2., 4.]))
    """
    with hidden_frames():
        return make_compiled(fn, "value_and_grad", argnums, has_aux, cache_size=cache_size,
                             check_finite=check_finite, target=target)


def export(fn, *args, path, overwrite=False, target=None, **kwargs) -> pathlib.Path:
    """Write the generated module for ``fn`` at this signature to ``path``.

    The file imports only NumPy and defines one function: ``f`` for
    ``compile(f)`` (or a plain ``f``), ``f_grad`` for ``grad(f)`` and
    ``f_value_and_grad`` for ``value_and_grad(f)``.  With ``target="array-api"``
    (or a function compiled with that target) the module imports
    ``array_api_compat`` instead and its function takes an ``xp=`` keyword
    (docs/guide.md, "Array-API target").  An existing file is never
    replaced unless ``overwrite=True`` (even one graphc wrote earlier), and a
    symbolic link, directory, FIFO or device is never replaced.  The file is
    written whole or not at all (a fresh ``O_EXCL`` temporary file, then a
    rename); see docs/threat-model.md.  A constant array of more than 8 KiB is
    not written into the module: it goes to a ``.npz`` file of the same name
    beside it (``f_grad.npz``), which the module reads once at import
    (:mod:`graphc.export_constants`); keep the two together.

    Raises
    ------
    graphc.errors.ExportError
        ``path`` exists and ``overwrite`` is not true, is a directory, link,
        FIFO or device, or cannot be written.
    graphc.errors.SignatureError, graphc.errors.OptionError
        ``path`` is not a str or path-like (``None``, bytes), or holds a NUL.

    Examples
    --------
    >>> import numpy as np, graphc, tempfile, os
    >>> def f(x):
    ...     return np.sum(x ** 2)
    >>> path = graphc.export(graphc.grad(f), np.ones(3), path=os.path.join(tempfile.mkdtemp(), "f_grad.py"))
    >>> "def f_grad(x):" in path.read_text()
    True
    >>> graphc.export(graphc.grad(f), np.ones(3), path=path, overwrite=True) == path
    True
    """
    with hidden_frames():
        from ._files import check_path, check_target
        where = errors.user_where()
        if target is not None:
            _own_keyword("graphc.export", "target", target, str, 'target="numpy" or "array-api"')
        path = check_path(path, "graphc.export", where=where)
        # Refuse an existing target before tracing (cheap, and the usual mistake);
        # write_atomic checks again, atomically, when it writes.
        check_target(path, overwrite, "graphc.export", where=where)
        compiled = fn if isinstance(fn, Compiled) else Compiled(fn, "compile")
        if target is not None and target != getattr(compiled, "target", "numpy"):
            if type(compiled).__name__ not in ("Compiled", "_FiniteChecked", "XpCompiled",
                                                   "NumbaCompiled"):
                raise OptionError(f"graphc.export(target={target!r}) re-targets graphc.compile, "
                                  f"grad and value_and_grad only, not {compiled!r}",
                                  hint="compile a function that calls the transform, with that "
                                       "target")
            compiled = make_compiled(compiled._fn, compiled._kind, compiled._argnums,
                                     compiled._has_aux, cache_size=1, check_finite=False,
                                     target=target)
        return _write_module(path, compiled.source(*args, **kwargs), overwrite, where)


def _write_module(path, source, overwrite, where):
    """Write an exported module, its large constants first to a ``.npz`` beside it."""
    from ._files import check_target, write_atomic
    from .export_constants import npz_bytes, npz_name, split_constants
    source, arrays = split_constants(source, path.name)
    if not arrays:
        write_atomic(path, source, overwrite=overwrite, what="graphc.export", where=where)
        return path
    npz = path.with_name(npz_name(path.name))
    if npz == path:
        raise ExportError(f"graphc.export cannot write {path.name}: its large constants go "
                          "to a .npz file of the same name", where=where,
                          hint="name the module file with .py")
    check_target(npz, overwrite, "graphc.export", where=where)
    write_atomic(npz, npz_bytes(arrays), overwrite=overwrite, what="graphc.export", where=where)
    try:
        write_atomic(path, source, overwrite=overwrite, what="graphc.export", where=where)
    except BaseException:
        npz.unlink(missing_ok=True)     # nothing half-done: no .npz without its module
        raise
    return path


def _check_call_kwargs(fn_or_graph, kwargs, draw_options) -> None:
    """OptionError for a keyword of render that is neither a drawing option nor the function's."""
    if not kwargs:
        return
    name = next(iter(kwargs))
    hint = ("drawing options are " + ", ".join(f"{k}=" for k in draw_options)
            + "; any other keyword is passed to your function")
    if isinstance(fn_or_graph, Graph):
        raise OptionError(f"graphc.render: {name}= is not a drawing option (and a Graph takes "
                          "no function arguments)", hint=hint)
    try:
        params = inspect.signature(fn_or_graph).parameters.values()
    except (TypeError, ValueError):
        return   # no signature to check against: let the call decide
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for name in kwargs:
        if name not in accepted:
            fname = getattr(fn_or_graph, "__name__", "the function")
            raise OptionError(f"graphc.render: {name}= is not a drawing option, and {fname}() "
                              f"has no parameter {name!r}", hint=hint)


@contextlib.contextmanager
def scope(name: str):
    """Group the operations traced inside the block under ``name``.

    Drawings cluster a scope's nodes (or collapse them into one box with
    ``collapse=``); scopes nest as ``"outer/inner"``.  Outside a trace it does
    nothing, so layer functions can always use it.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(x):
    ...     with graphc.scope("layer1"):
    ...         h = np.tanh(x)
    ...     return h.sum()
    >>> g = graphc.trace(f, np.ones(3))
    >>> sorted({g[n].scope for n in g} - {None})
    ['layer1']
    """
    t = current_trace()
    if t is None:
        yield
        return
    parent = t.attrs.get("scope")
    with t.context(scope=f"{parent}/{name}" if parent else str(name)):
        yield


def _graph_to_draw(fn_or_graph, args, kwargs, backward, argnums, want_values):
    """``(graph, user function)`` that render draws: a Graph as given, a compiled
    callable's graph, ``value_and_grad(fn, argnums)``'s with ``backward``, else the trace."""
    if isinstance(fn_or_graph, Graph):
        if want_values:
            raise OptionError("graphc.render(graph, values=True): a Graph holds no argument "
                              "values", hint="pass the function and its example arguments: "
                                             "graphc.render(fn, *args, values=True)")
        return fn_or_graph, None
    if isinstance(fn_or_graph, Compiled):
        return fn_or_graph.graph(*args, **kwargs), fn_or_graph._fn
    if backward:
        return value_and_grad(fn_or_graph, argnums=argnums).graph(*args, **kwargs), fn_or_graph
    return trace(fn_or_graph, *args, **kwargs), fn_or_graph


def render(fn_or_graph, *args, path=None, backward=False, argnums=0, overwrite=False, **kwargs):
    """Draw a function's graph (or a :class:`Graph`): to ``path`` (.svg, .png, .pdf, .dot, .gv),
    or, without ``path``, as a :class:`graphc.drawing.Drawing` that Jupyter shows inline.

    Parameters
    ----------
    fn_or_graph : callable, Compiled or Graph
    *args
        Example arguments (arrays or :class:`Spec`) when a function is given.
    path : str or path-like, optional
        The file to write; ``None`` returns the drawing (big graphs collapsed by scope).
        An existing file is replaced only if graphc drew it (a mark in the file).
    overwrite : bool
        Replace ``path`` even if graphc did not write it (never a link, folder or device).
    backward : bool
        Draw the backward graph beside the forward one: for a plain function,
        the graph of ``value_and_grad(fn, argnums)``.
    argnums : int or tuple of int
        With ``backward=True``, the arguments differentiated (default 0, as ``grad``).
    **kwargs
        Drawing options (``collapse=``, ``flops=``, ``legend=``, ``rankdir=``,
        ``dpi=``, ``size=(w, h)`` in inches, ``values=True``), never passed to the
        function; any other keyword is a keyword argument of the call.

    Returns
    -------
    pathlib.Path or graphc.drawing.Drawing

    Raises
    ------
    graphc.errors.OptionError
        A drawing option with a value it does not take (``rankdir="XX"``), or
        a keyword that is neither a drawing option nor a parameter of the
        function.

    Examples
    --------
    >>> import numpy as np, graphc, tempfile, os
    >>> out = graphc.render(lambda x: np.sum(np.exp(x) * x), np.ones(3),
    ...                     path=os.path.join(tempfile.mkdtemp(), "f.dot"), backward=True)
    >>> "cluster_backward" in out.read_text()
    True
    """
    with hidden_frames():
        from ._files import check_path
        from .draw_options import DRAW_OPTIONS, check_options
        from .drawing import draw, graph_values
        if path is not None:
            path = check_path(path, "graphc.render")
        draw_opts = {k: kwargs.pop(k) for k in DRAW_OPTIONS if k in kwargs and k != "backward"}
        check_options(backward=backward, **draw_opts)
        _check_call_kwargs(fn_or_graph, kwargs, DRAW_OPTIONS)
        want_values = draw_opts.pop("values", False)
        graph, fn = _graph_to_draw(fn_or_graph, args, kwargs, backward, argnums, want_values)
        values = graph_values(graph, fn, args, kwargs) if want_values else None
        drawing = draw(graph, values=values, inline=path is None, backward=backward, **draw_opts)
        return drawing if path is None else drawing.save(path, overwrite=overwrite)
