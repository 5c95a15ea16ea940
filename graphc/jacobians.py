"""``graphc.jacobian`` (``jacrev``/``jacfwd``) and ``graphc.hessian``.

Built from the other transforms, never a Python loop over basis vectors:
``mode="rev"`` is ``vmap`` of the VJP (:class:`graphc.jvp_vjp.VJPCompiled`) over the
rows of an identity (one batched backward pass per output leaf: the cotangents
``e_i``), ``mode="fwd"`` is ``vmap`` of the JVP over the columns of an identity (one
batched forward pass per differentiated input leaf).  The batched passes are matrix
operations (a row of the identity per example).  Shapes follow JAX: a leaf of the
output of shape ``o`` and a leaf of the input of shape ``i`` give a block
``o + i``.  ``hessian(f)`` is ``jacfwd(jacrev(f))`` (forward over reverse).
:class:`JacobianCompiled` is a :class:`graphc.Compiled`: compiled per signature,
``.source()``/``.graph()``, and inlined into an enclosing trace (so it composes).
"""
from __future__ import annotations

import numpy as np

from . import errors
from .argnums import normalize_argnums
from .avals import aval_of
from .capture import function_name, live
from .compiled import Compiled
from .errors import OptionError
from .jvp_checks import check_primals
from .jvp_vjp import JVPCompiled, VJPCompiled
from .passes.simplify import BASIS
from .pytree import flatten, unflatten
from .tracebacks import hidden_frames
from .tracing import current_trace
from .vmap import VmapCompiled
from .codegen_xp import numpy_target_only

__all__ = ["JacobianCompiled", "HessianCompiled", "jacobian", "jacrev", "jacfwd", "hessian"]


def _basis(trace, shape, dtype):
    """The identity of size ``prod(shape)``, shaped ``(n,) + shape``: the basis vectors.

    Named ``basis`` (its hint): ``passes/simplify`` drops a product ``basis @ A`` (or
    ``A @ basis``) to ``A``, the seed's zeros being structural, and the generated code
    builds it as ``np.eye(n)`` (``literals.const_text``) rather than spelling n^2 numbers.
    """
    n = int(np.prod(shape, dtype=np.int64))
    seed = trace.lift(np.eye(n, dtype=dtype).reshape((n,) + tuple(shape)))
    trace.graph[seed.node].hint = BASIS
    return seed


def _zeros(trace, x):
    a = aval_of(x)
    return trace.lift(np.zeros(a.shape, a.dtype))


def _spliced(fn, args, nums):
    """``g(*diff)``: ``fn`` with the arguments at ``nums`` replaced by ``diff``."""
    def g(*diff):
        full = list(args)
        for i, d in zip(nums, diff):
            full[i] = d
        return fn(*full)
    g.__name__ = function_name(fn)
    return g


def _rev(g, diff, out_leaves, out_tdef):
    """Per output leaf ``o``: ``vmap`` of the VJP over ``e_i``, rows shaped ``o + in``."""
    trace = current_trace()
    vjp = VJPCompiled(g)
    k = len(diff)
    blocks = []          # blocks[o][j]: output leaf o, input leaf j
    for oi, o in enumerate(out_leaves):
        a = aval_of(o)
        cts = [_basis(trace, a.shape, a.dtype) if j == oi else _zeros(trace, x)
               for j, x in enumerate(out_leaves)]
        axes = unflatten(out_tdef, [0 if j == oi else None for j in range(len(out_leaves))])
        rows = VmapCompiled(lambda *p: vjp(*p[:k], p[k]),
                            in_axes=(None,) * k + (axes,))(*diff, unflatten(out_tdef, cts))
        blocks.append([r.reshape(a.shape + aval_of(r).shape[1:]) for r in flatten(rows)[0]])
    return blocks


def _fwd(g, diff, out_leaves):
    """Per input leaf ``x``: ``vmap`` of the JVP over ``e_j``, columns moved last."""
    trace = current_trace()
    jvp = JVPCompiled(g)
    k = len(diff)
    in_leaves, in_tdef, _ = flatten(tuple(diff))
    cols = []            # cols[j][o]
    for ji, x in enumerate(in_leaves):
        a = aval_of(x)
        ts = [_basis(trace, a.shape, a.dtype) if j == ji else _zeros(trace, y)
              for j, y in enumerate(in_leaves)]
        axes = unflatten(in_tdef, [0 if j == ji else None for j in range(len(in_leaves))])
        dots = VmapCompiled(lambda *p: jvp(p[:k], p[k:])[1],
                            in_axes=(None,) * k + tuple(axes))(*diff, *unflatten(in_tdef, ts))
        n = int(np.prod(a.shape, dtype=np.int64))
        col = []
        for d, o in zip(flatten(dots)[0], out_leaves):
            oshape = aval_of(o).shape
            col.append(d.reshape(n, -1).T.reshape(oshape + a.shape))
        cols.append(col)
    return [[cols[j][o] for j in range(len(in_leaves))] for o in range(len(out_leaves))]


class JacobianCompiled(Compiled):
    """``graphc.jacobian(fn, argnums, mode)``: the Jacobian, compiled per signature."""

    def __init__(self, fn, argnums=0, mode="rev", *, cache_size=64):
        if mode not in ("rev", "fwd"):
            raise OptionError(f"graphc.jacobian: mode must be 'rev' or 'fwd', got {mode!r}",
                              where=errors.user_where(),
                              hint="'rev': rows by reverse mode (few outputs); "
                                   "'fwd': columns by forward mode (few inputs)")
        normalize_argnums(argnums)
        super().__init__(fn, "jac" + mode, cache_size=cache_size)
        self._argnums = argnums
        self._mode = mode
        self._label = f"graphc.jac{mode}({function_name(fn)})"

    def _doc(self, params):
        nums = normalize_argnums(self._argnums, len(params))
        how = "rows by reverse mode" if self._mode == "rev" else "columns by forward mode"
        return (f"Jacobian of {function_name(self._fn)} with respect to "
                f"{', '.join(params[i] for i in nums)} ({how}, batched).")

    def _body(self):
        return self._jacobian

    def __call__(self, *args, **kwargs):
        with hidden_frames():
            nums = normalize_argnums(self._argnums, len(args))
            check_primals(self._label, lambda *a: None, tuple(args[i] for i in nums))
            return Compiled.__call__(self, *args, **kwargs)

    def _jacobian(self, call_args, call_kwargs):
        args = list(call_args)
        nums = normalize_argnums(self._argnums, len(args))
        fn = live(self._fn)
        g = _spliced(lambda *a: fn(*a, **call_kwargs), args, nums)
        diff = [args[i] for i in nums]
        out = g(*diff)
        out_leaves, out_tdef, _ = flatten(out)
        out_leaves = [current_trace().lift(o) for o in out_leaves]
        if self._mode == "rev":
            blocks = _rev(g, diff, out_leaves, out_tdef)
        else:
            blocks = _fwd(g, diff, out_leaves)
        per_out = []
        for row in blocks:
            trees, k = [], 0
            for d in diff:
                leaves, tdef, _ = flatten(d)
                trees.append(unflatten(tdef, row[k:k + len(leaves)]))
                k += len(leaves)
            per_out.append(trees[0] if isinstance(self._argnums, int) else tuple(trees))
        return unflatten(out_tdef, per_out)


def jacobian(fn, argnums=0, mode="rev", *, target="numpy"):
    """The Jacobian of ``fn``, compiled per signature (as ``jax.jacrev``/``jax.jacfwd``).

    ``mode="rev"`` builds it by rows: ``vmap`` of the VJP over the basis of output
    cotangents (cheap for few outputs); ``mode="fwd"`` by columns: ``vmap`` of the
    JVP over the basis of input tangents (cheap for few inputs).  Either is one
    batched pass of matrix operations, never a Python loop over basis vectors.

    Parameters
    ----------
    fn : callable
        A function of NumPy values returning a pytree of floating arrays.
    argnums : int or tuple of int, default 0
        The positional arguments to differentiate (pytrees of floating arrays).
    mode : {"rev", "fwd"}, default "rev"

    Returns
    -------
    JacobianCompiled
        Called with ``fn``'s arguments; for an output leaf of shape ``o`` and an input
        leaf of shape ``i`` the block has shape ``o + i``, nested as the output's
        pytree of the argument's pytree (a tuple of them for a tuple ``argnums``).
        ``.source(*args)``/``.graph(*args)`` show the generated code.

    Raises
    ------
    OptionError
        ``mode`` is neither ``"rev"`` nor ``"fwd"``.
    GradError
        A differentiated argument is an integer or boolean array.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(x):
    ...     return np.stack([x[0] * x[1], np.sin(x[0])])
    >>> graphc.jacobian(f)(np.array([0.0, 2.0]))
    array([[2., 0.],
           [1., 0.]])
    >>> graphc.jacfwd(f)(np.array([0.0, 2.0]))
    array([[2., 0.],
           [1., 0.]])
    """
    with hidden_frames():
        numpy_target_only(target, "graphc.jacobian")   # (graphc/codegen_xp.py)
        return JacobianCompiled(fn, argnums, mode)


def jacrev(fn, argnums=0, *, target="numpy"):
    """``graphc.jacobian(fn, argnums, mode="rev")``: the Jacobian by rows (reverse mode).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> graphc.jacrev(lambda x, y: x * y, argnums=(0, 1))(np.array([1.0, 2.0]),
    ...                                                    np.array([3.0, 4.0]))
    (array([[3., 0.],
           [0., 4.]]), array([[1., 0.],
           [0., 2.]]))
    """
    with hidden_frames():
        numpy_target_only(target, "graphc.jacrev")   # (graphc/codegen_xp.py)
        return JacobianCompiled(fn, argnums, "rev")


def jacfwd(fn, argnums=0, *, target="numpy"):
    """``graphc.jacobian(fn, argnums, mode="fwd")``: the Jacobian by columns (forward mode).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> graphc.jacfwd(lambda x: x ** 2)(np.array([1.0, 3.0]))
    array([[2., 0.],
           [0., 6.]])
    """
    with hidden_frames():
        numpy_target_only(target, "graphc.jacfwd")   # (graphc/codegen_xp.py)
        return JacobianCompiled(fn, argnums, "fwd")


def hessian(fn, argnums=0, *, target="numpy"):
    """The Hessian of a scalar ``fn``: ``jacfwd(jacrev(fn))``, forward over reverse.

    Parameters
    ----------
    fn : callable
        A function returning a real floating scalar.
    argnums : int or tuple of int, default 0

    Returns
    -------
    JacobianCompiled
        Called with ``fn``'s arguments: shape ``in_shape + in_shape`` for one array
        argument (for a tuple ``argnums``, a tuple of tuples of blocks, as JAX).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(x):
    ...     return x[0] ** 2 * x[1]
    >>> graphc.hessian(f)(np.array([1.0, 3.0]))
    array([[6., 2.],
           [2., 0.]])
    """
    with hidden_frames():
        numpy_target_only(target, "graphc.hessian")   # (graphc/codegen_xp.py)
        return HessianCompiled(fn, argnums)


class HessianCompiled(JacobianCompiled):
    """``graphc.hessian(fn, argnums)``: ``jacfwd(jacrev(fn))``, compiled per signature."""

    def __init__(self, fn, argnums=0):
        super().__init__(JacobianCompiled(fn, argnums, "rev"), argnums, "fwd")
        self._label = f"graphc.hessian({function_name(fn)})"
        self.__name__ = self.__qualname__ = f"{function_name(fn)}_hessian"
        self._of = function_name(fn)

    def _doc(self, params):
        nums = normalize_argnums(self._argnums, len(params))
        return (f"Hessian of {self._of} with respect to {', '.join(params[i] for i in nums)} "
                "(forward over reverse: jacfwd of jacrev, batched).")
