"""``graphc.custom_vjp``: a function whose reverse-mode derivative the user writes.

Inside a traced function, ``f(*args)`` runs the user's ``fwd`` (its primal nodes
are recorded as usual) and wraps the result in one ``custom_vjp_call`` node whose
arguments are ``(out, *args, *residuals)`` and whose value is ``out``.  The node's
VJP rule calls the user's ``bwd(residuals, ct)`` on tracers, so the backward pass
is the user's rule traced into the graph (under ``# grad of:`` the call's line) and
no cotangent flows into the primal's own nodes.  Being ordinary graphc ops, the
traced ``bwd`` is differentiated again by ``grad(grad(f))``.  Forward mode through
the node is refused (as JAX).  ``params["rule"]`` is an integer key into
:data:`RULES` (params must stay plain values); generated code writes the node as
its first argument.  Outside any trace ``f`` is plain Python.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np

from . import errors
from .errors import GradError, UnsupportedError
from .naming import sanitize
from .ops._rules import zero_flops
from .primitive import primitive
from .pytree import flatten
from .tracing import Tracer

__all__ = ["custom_vjp", "custom_jvp", "checkpoint", "RULES"]

#: ``{key: (_Rule, residuals' treedef)}``: the user's rules of the recorded
#: ``custom_vjp_call`` nodes.  One key per rule *and call site* (:func:`_register`), so
#: tracing a function again (a new signature, a fresh ``grad``) adds nothing.
RULES: dict = {}
_KEYS = itertools.count()
_KEY_OF: dict = {}        # what identifies a rule -> its key in RULES


def _register(ident, make):
    """The key of ``RULES`` for ``ident`` (a tuple of the user's functions, the call site
    and the residuals' structure: held strongly, so a key is never reused for another
    rule, unlike ``id()``); ``make()`` builds ``(rule, treedef)`` the first time."""
    try:
        key = _KEY_OF.get(ident)
    except TypeError:     # an unhashable user callable: a key of its own (RULES grows)
        key, ident = None, None
    if key is None:
        key = next(_KEYS)
        RULES[key] = make()
        if ident is not None:
            _KEY_OF[ident] = key
    return key


class _Rule:
    def __init__(self, fn, bwd, where, jvp=None, layout=None):
        self.fn, self.bwd, self.where = fn, bwd, where
        self.jvp = jvp        # (args, tangents) -> out tangent, or None: forward mode refused
        self.layout = layout  # a pytree result: (treedef, leaf shapes) of the packed value
        self.with_args = False  # bwd also takes the node's arguments (a vmapped node)


def _def_where(fn):
    code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
    return None if code is None else errors.where_text(code.co_filename, code.co_firstlineno)


class _Named:
    __name__ = "sample"


RULES[-1] = (_Rule(_Named(), lambda r, ct: (ct,), None, lambda args, ts: ts[0]),
             flatten(())[1])


class custom_vjp:
    """A function with a user-written reverse-mode derivative (as ``jax.custom_vjp``).

    Decorate the primal ``fn``, then call ``f.defvjp(fwd, bwd)``: ``fwd(*args)``
    returns ``(out, residuals)`` and ``bwd(residuals, ct)`` returns a tuple with one
    cotangent per argument (``None`` for a zero one).  Inside ``graphc.grad``,
    ``value_and_grad`` and ``vjp`` the backward pass is ``bwd``, traced into the
    graph (generated code shows it under ``# grad of:`` the call's line); outside
    a traced function ``f`` just calls ``fn``.  ``graphc.check`` compares the
    rule with the derivative of ``fn`` and reports a wrong one as a mismatch.
    The arguments are arrays, numbers or pytrees of them (dicts, lists, tuples: ``fwd``
    and ``bwd`` see the same structures, and ``bwd`` returns each argument's cotangent
    as a pytree like it, or None); ``out`` is one array or a pytree (tuple,
    list, dict) of arrays of one dtype, whose cotangent ``bwd`` receives as the same
    pytree (the node's value is then the leaves concatenated, sliced back after it);
    ``graphc.jvp`` through ``f`` raises ``UnsupportedError``.

    Parameters
    ----------
    fn : callable
        The primal function.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> @graphc.custom_vjp
    ... def log1pexp(x):
    ...     return np.log1p(np.exp(x))
    >>> def fwd(x):
    ...     return log1pexp(x), x
    >>> def bwd(x, ct):
    ...     return (ct / (1.0 + np.exp(-x)),)      # ct * sigmoid(x): finite for large x
    >>> log1pexp.defvjp(fwd, bwd)
    >>> float(graphc.grad(log1pexp)(800.0))
    1.0
    >>> float(log1pexp(0.0))                        # plain Python outside a trace
    0.6931471805599453
    """

    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.fn, self.fwd, self.bwd = fn, None, None
        self._depth = 0           # > 0 while fwd runs: a call of f inside fwd is the primal
        self._jvp = None          # "primal" for checkpoint: forward mode through fn's nodes

    def defvjp(self, fwd, bwd):
        """Set the rule: ``fwd(*args) -> (out, residuals)``, ``bwd(residuals, ct) -> cts``."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        leaves, _, _ = flatten(args)
        if self._depth or not any(isinstance(x, Tracer) for x in leaves):
            return self.fn(*args)
        where = errors.user_where(1)
        if self.fwd is None:
            raise GradError(f"custom_vjp function {self.__name__!r} has no rule", where=where,
                            hint="call f.defvjp(fwd, bwd) before using it")
        tracer = next(x for x in leaves if isinstance(x, Tracer))
        if any(isinstance(a, (dict, list, tuple)) for a in args):
            return self._call_pytrees(args, tracer, where)
        args = [tracer._trace.lift(np.asarray(a)) if not isinstance(a, Tracer) else a
                for a in args]
        self._depth += 1
        try:
            out, res = self.fwd(*args)
        finally:
            self._depth -= 1
        out, layout = _pack(self, out, tracer._trace)
        res_leaves, res_tdef, _ = flatten(res)
        res_leaves = [r if isinstance(r, Tracer) else tracer._trace.lift(np.asarray(r))
                      for r in res_leaves]
        key = _register(("vjp", self, self.fwd, self.bwd, self._jvp, where, res_tdef, layout),
                        lambda: (_Rule(self, self.bwd, where, self._jvp, layout), res_tdef))
        node = _named(custom_vjp_call(out, *args, *res_leaves, rule=key, n_args=len(args)),
                      self.__name__)
        return node if layout is None else _unpack(node, layout)


    def _call_pytrees(self, args, tracer, where):
        """Arguments that are pytrees (dicts, lists, tuples of arrays), as jax.custom_vjp:
        the node takes their leaves, ``fwd`` and ``bwd`` see the user's structures, and
        ``bwd``'s cotangent of each argument (a pytree like it, or None) is flattened back
        into one per leaf (:func:`_leaf_bwd`)."""
        from .pytree import unflatten
        lift = tracer._trace.lift
        leaves, arg_tdef, _ = flatten(tuple(args))
        leaves = [x if isinstance(x, Tracer) else lift(np.asarray(x)) for x in leaves]
        self._depth += 1
        try:
            out, res = self.fwd(*unflatten(arg_tdef, leaves))
        finally:
            self._depth -= 1
        out, layout = _pack(self, out, tracer._trace)
        res_leaves, res_tdef, _ = flatten(res)
        res_leaves = [r if isinstance(r, Tracer) else lift(np.asarray(r)) for r in res_leaves]
        bwd = _leaf_bwd(self, arg_tdef)
        key = _register(("vjp-tree", self, self.fwd, self.bwd, where, res_tdef, layout, arg_tdef),
                        lambda: (_Rule(self, bwd, where, None, layout), res_tdef))
        node = _named(custom_vjp_call(out, *leaves, *res_leaves, rule=key,
                                      n_args=len(leaves)), self.__name__)
        return node if layout is None else _unpack(node, layout)


def _leaf_bwd(f, arg_tdef):
    """``f.bwd`` returning one cotangent per argument (pytrees), as one per leaf."""
    def bwd(res, ct):
        cts = f.bwd(res, ct)
        where = _def_where(f.bwd)
        n = len(arg_tdef.children)
        if not isinstance(cts, (tuple, list)) or len(cts) != n:
            raise GradError(f"custom_vjp {f.__name__!r}: bwd must return a tuple of {n} "
                            "cotangent(s), one per argument", where=where,
                            hint=f"return a tuple of {n}: each cotangent like its argument, "
                                 "or None for a zero one")
        out = []
        for i, (c, sub) in enumerate(zip(cts, arg_tdef.children)):
            if c is None:
                out += [None] * sub.num_leaves
                continue
            got, got_tdef, _ = flatten(c)
            if got_tdef != sub:
                raise GradError(f"custom_vjp {f.__name__!r}: bwd's cotangent {i} is "
                                f"{got_tdef!r}, argument {i} is {sub!r}", where=where,
                                hint="a cotangent has its argument's structure (None for 0)")
            out += got
        return tuple(out)
    bwd.__wrapped__ = f.bwd           # errors name the user's bwd (_def_where)
    return bwd


class custom_jvp:
    """A function with a user-written forward-mode derivative (as ``jax.custom_jvp``).

    Decorate the primal ``fn``, then call ``f.defjvp(rule)``: ``rule(primals, tangents)``
    returns ``(out, out_tangent)`` (``primals`` and ``tangents`` are tuples).  Inside
    ``graphc.jvp`` the tangent is the rule's; in reverse mode (``graphc.grad``) the VJP
    is the *transpose* of the rule's tangent map, derived by graphc's reverse mode
    through the traced rule (the rule must be linear in the tangents, as in JAX).
    Outside a traced function ``f`` calls ``fn``.  Arguments are arrays or numbers and
    the result is one array.

    Parameters
    ----------
    fn : callable
        The primal function.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> @graphc.custom_jvp
    ... def softplus(x):
    ...     return np.log1p(np.exp(x))
    >>> @softplus.defjvp
    ... def rule(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return softplus(x), t / (1.0 + np.exp(-x))
    >>> out, dot = graphc.jvp(softplus, (np.array(0.0),), (np.array(2.0),))
    >>> float(dot)
    1.0
    >>> float(graphc.grad(softplus)(0.0))
    0.5
    """

    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.fn, self.rule, self._depth = fn, None, 0

    def defjvp(self, rule):
        """Set the rule: ``rule(primals, tangents) -> (out, out_tangent)``.

        Returns ``rule``, as ``jax.custom_jvp.defjvp`` does, so it also works as a
        decorator (``@f.defjvp``).
        """
        self.rule = rule
        return rule

    def __call__(self, *args):
        leaves, _, _ = flatten(args)
        if self._depth or not any(isinstance(x, Tracer) for x in leaves):
            return self.fn(*args)
        where = errors.user_where(1)
        if self.rule is None:
            raise GradError(f"custom_jvp function {self.__name__!r} has no rule", where=where,
                            hint="call f.defjvp(rule) before using it")
        tracer = next(x for x in leaves if isinstance(x, Tracer))
        args = [tracer._trace.lift(np.asarray(a)) if not isinstance(a, Tracer) else a
                for a in args]
        out = self._run(self.fn, *args)
        if not isinstance(out, Tracer):
            raise UnsupportedError(f"custom_jvp: {self.__name__!r} must return one array "
                                   f"computed from its arguments, got {type(out).__name__}",
                                   where=where, hint="return a single array")
        tdef = flatten(tuple(args))[1]
        key = _register(("jvp", self, self.rule, where, tdef),
                        lambda: (_Rule(self, functools.partial(_transpose_bwd, self, len(args)),
                                       where, functools.partial(_jvp_tangent, self)), tdef))
        return _named(custom_vjp_call(out, *args, *args, rule=key, n_args=len(args)),
                      self.__name__)

    def _run(self, fn, *args):
        self._depth += 1
        try:
            return fn(*args)
        finally:
            self._depth -= 1


def _named(result, name):
    """The node's variable named after the user's function (not ``custom_vjp_call``)."""
    node = result._trace.graph[result.node]
    if node.name is None and name.isidentifier():
        node.name = sanitize(name)
    return result


def _jvp_tangent(f, args, ts):
    """The user's rule on tracers: its out tangent (checked to be one array)."""
    res = f._run(f.rule, tuple(args), tuple(ts))
    where = _def_where(f.rule)
    if not isinstance(res, (tuple, list)) or len(res) != 2:
        raise GradError(f"custom_jvp {f.__name__!r}: the rule must return (out, out_tangent)",
                        where=where, hint="return the primal result and its tangent")
    t = res[1]
    if not isinstance(t, Tracer):
        t = args[0]._trace.lift(np.asarray(t, dtype=np.result_type(res[0])))
    return t


def _transpose_bwd(f, n, res, ct):
    """Reverse mode through a custom_jvp: the transpose of the rule's (linear) tangent map,
    by reverse mode over the rule traced at tangents ``0 * x`` (nodes, not constants)."""
    from .autodiff import backward
    args = list(res[:n])
    ts = [a * 0.0 for a in args]
    t_out = _jvp_tangent(f, args, ts)
    return tuple(backward(t_out, ts, ct))


def checkpoint(fn):
    """``fn`` whose backward pass recomputes its forward (rematerialization, ``jax.checkpoint``).

    Inside ``graphc.grad`` the values ``fn`` computes are not kept for the backward
    pass: the gradient's code recomputes ``fn`` from its arguments (under
    ``# grad of:`` the call's line) and differentiates the recomputation, so
    ``graph.cost()`` counts ``fn``'s FLOPs twice (the recomputed nodes have
    ``node.recompute`` set: ``Cost.recomputed_flops`` counts them and
    ``Cost.recomputed_bytes`` the values rebuilt instead of kept; drawings mark
    them).  Gradients are unchanged.  ``fn`` takes arrays and returns one array
    or a pytree of arrays of one dtype; outside a traced function it is plain Python.  ``checkpoint(fn)`` called twice
    with the same ``fn`` returns the same object.

    Parameters
    ----------
    fn : callable

    Returns
    -------
    callable

    Examples
    --------
    >>> import numpy as np, graphc
    >>> layer = graphc.checkpoint(lambda x: np.tanh(np.tanh(x)))
    >>> g = graphc.value_and_grad(lambda x: layer(x).sum())
    >>> float(g(0.0)[1])
    1.0
    >>> g.source(0.0).count("np.tanh(")            # twice forward, twice recomputed
    4
    """
    try:                  # one object per fn: its rule keeps one key in RULES per call site
        f = _CHECKPOINTS.get(fn)
    except TypeError:     # an unhashable callable
        return _checkpoint(fn)
    if f is None:
        f = _CHECKPOINTS[fn] = _checkpoint(fn)
    return f


_CHECKPOINTS: dict = {}


def _checkpoint(fn):
    f = custom_vjp(fn)

    def fwd(*args):
        return fn(*args), tuple(args)

    def bwd(args, ct):
        from .autodiff import backward
        # fresh values (a barrier node each) so CSE cannot merge the recomputation
        xs = [custom_vjp_call(a, a, rule=-1, n_args=1) for a in args]
        with xs[0]._trace.context(recompute=True):    # graph.cost() and drawings show them
            out = fn(*xs)
        if isinstance(out, Tracer):
            return tuple(backward(out, xs, ct))
        return tuple(backward(flatten(out)[0], xs, flatten(ct)[0]))     # a pytree result

    f.defvjp(fwd, bwd)
    f._jvp = "primal"
    return f


def _pack(f, out, trace):
    """``(value, layout)``: one array as is (layout None); a pytree of arrays of one dtype
    as the concatenation of its raveled leaves (the node's value: one VJP for all of them),
    with its treedef and leaf shapes, which :func:`_unpack` splits back."""
    if isinstance(out, Tracer):
        return out, None
    leaves, tdef, _ = flatten(out)
    leaves = [x if isinstance(x, Tracer) else trace.lift(np.asarray(x)) for x in leaves]
    dtypes = sorted({str(x.dtype) for x in leaves})
    if not leaves or len(dtypes) != 1:
        raise UnsupportedError(
            f"custom_vjp: {f.__name__!r} must return an array or a pytree (tuple, list, dict) "
            f"of arrays of one dtype; got " + (f"dtypes {', '.join(dtypes)}" if leaves else
                                               type(out).__name__),
            where=_def_where(f.fwd), hint="cast the results to one dtype (x.astype(...))")
    flat = np.concatenate([x.reshape(-1) for x in leaves])
    return flat, (tdef, tuple(tuple(x.shape) for x in leaves))


def _unpack(flat, layout):
    """The pytree of :func:`_pack`'s layout, sliced out of the flat ``flat``."""
    from .pytree import unflatten
    tdef, shapes = layout
    leaves, start = [], 0
    for shape in shapes:
        n = int(np.prod(shape, dtype=np.int64))
        leaves.append(flat[start:start + n].reshape(shape))
        start += n
    return unflatten(tdef, leaves)


def _unflatten_res(tdef, leaves):
    from .pytree import unflatten
    return unflatten(tdef, list(leaves))


def _vjp(ct, out_arg, *rest, out, rule, n_args):
    r, tdef = RULES[rule]
    args, res = rest[:n_args], rest[n_args:]
    bwd_where = _def_where(r.bwd) or r.where
    if r.layout is not None:          # a pytree result: the cotangent of each leaf
        ct = _unpack(ct, r.layout)
    cts = r.bwd(_unflatten_res(tdef, res), ct, *([(out_arg, *args)] if r.with_args else []))
    if not isinstance(cts, (tuple, list)) or len(cts) != n_args:
        got = f"{len(cts)} values" if isinstance(cts, (tuple, list)) else type(cts).__name__
        raise GradError(f"custom_vjp {r.fn.__name__!r}: bwd must return a tuple of {n_args} "
                        f"cotangent(s), one per argument; got {got}", where=bwd_where,
                        hint="return (ct_x,) for one argument, None for a zero cotangent")
    fitted = []
    for i, (a, c) in enumerate(zip(args, cts)):
        if c is None:
            fitted.append(None)
            continue
        if not isinstance(c, Tracer):
            c = a._trace.lift(np.asarray(c, dtype=a.dtype))
        if not _fits(c.shape, a.shape):
            raise GradError(f"custom_vjp {r.fn.__name__!r}: bwd's cotangent {i} has shape "
                            f"{tuple(c.shape)}, argument {i} has shape {tuple(a.shape)}",
                            where=bwd_where, hint="a cotangent has its argument's shape")
        fitted.append(c)
    return (None, *fitted) + (None,) * len(res)


def _fits(ct_shape, shape):
    try:
        return np.broadcast_shapes(tuple(ct_shape), tuple(shape)) == tuple(shape)
    except ValueError:
        return False


def _jvp(t, out_arg, *rest, out, rule, n_args):
    r, _ = RULES[rule]
    if r.jvp == "primal":          # checkpoint: the tangent flows through the primal's nodes
        return t[0]
    if r.jvp is not None:
        args = rest[:n_args]
        ts = [a._trace.lift(np.zeros(a.shape, a.dtype)) if x is None else x
              for a, x in zip(args, t[1:1 + n_args])]
        return r.jvp(args, ts)
    raise UnsupportedError(f"forward mode (graphc.jvp) through custom_vjp function "
                           f"{r.fn.__name__!r} is not supported: it defines only a VJP",
                           where=r.where, hint="differentiate it in reverse mode (graphc.grad, "
                                               "graphc.vjp), as jax.custom_vjp")


def _batch(args, dims, aval, *, rule, n_args):
    """vmap: the same node over the batched values.  Its VJP runs the user's per-example
    ``bwd`` under vmap (graphc/custom_batch.py), so ``grad(vmap(f))`` uses the rule too."""
    from .custom_batch import batched_bwd
    r, tdef = RULES[rule]
    dims = tuple(dims)

    def make():
        rule_ = _Rule(r.fn, functools.partial(batched_bwd, r, tdef, dims, n_args), r.where,
                      "primal" if r.jvp == "primal" else None)
        rule_.with_args = True            # bwd(res, ct, args): it needs the batched shapes
        return rule_, tdef
    key = _register(("batched", rule, dims), make)
    return custom_vjp_call(*args, rule=key, n_args=n_args), dims[0]


def _samples(d):
    # a rule stored under key -1: identity primal, identity bwd; finite differences see
    # the derivative the rule defines (through x, none through out), as stop_gradient's
    from .ops import _samples as S
    x = d.rnd(3, 4)
    return [S.Sample((x, x.copy()), {"rule": -1, "n_args": 1}, lambda out, x: out, "identity-rule",
                     fd_ref=lambda out, x: x)]


custom_vjp_call = primitive(
    samples=_samples, batch=_batch,
    name="custom_vjp_call", shape=lambda out, *rest, rule, n_args: out,
    numpy=lambda e, *, rule, n_args: e.atoms[0],
    array_api=lambda e, *, rule, n_args: e.atoms[0],
    vjp=_vjp, jvp=_jvp, sympy=lambda out, *rest, rule, n_args: out, label="custom_vjp",
    family="shape", flops=zero_flops,
    doc="A custom_vjp function's result: its value is the first argument; its VJP is the "
        "user's bwd.")
