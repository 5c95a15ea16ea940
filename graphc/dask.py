"""Data-parallel gradients on Dask: :func:`value_and_grad`.

The batch arguments are Dask arrays chunked along axis 0.  On the client, graphc
proves from the traced graph that the loss is a mean or sum of per-example terms
(:mod:`graphc.batch_axis`), works out each chunk's weight (``rows / N`` for a
mean, 1 for a sum) and generates one gradient module per distinct chunk size.
Each chunk's task execs that module's text on a worker (cached there by its hash;
the worker needs NumPy and graphc, not the user's code), computes the weighted
value and gradient, and the results are summed as a tree (fan-in
``split_every``).  The other arguments (the parameters) are sent to the workers
once: scattered with a distributed client, one delayed value otherwise.

Imported on demand (``graphc.dask``); ``import graphc`` does not import Dask.
"""
from __future__ import annotations

import hashlib
import importlib.util
import threading

import numpy as np

from . import loader
from .argnums import normalize_argnums
from .batch_axis import BatchAxisError
from .batch_chunks import batch_specs, prove_split
from .errors import OptionError, SignatureError, user_where

__all__ = ["value_and_grad", "DaskValueAndGrad", "BatchAxisError"]


def value_and_grad(fn, argnums=0, batch_argnums=(1,), client=None, *, split_every=4,
                   has_aux=False):
    """Data-parallel ``graphc.value_and_grad`` over Dask arrays chunked along axis 0.

    Parameters
    ----------
    fn : callable
        The loss: a mean or sum over examples of per-example terms (graphc
        checks this on the graph and refuses anything else with
        :class:`graphc.batch_axis.BatchAxisError`).
    argnums : int or tuple of int, default 0
        The arguments to differentiate, as for :func:`graphc.value_and_grad`.
    batch_argnums : int or tuple of int, default (1,)
        The arguments that are Dask arrays of examples, chunked along axis 0
        (they are rechunked to the first one's row chunks, other axes one chunk).
    client : distributed.Client, optional
        Where to run; by default the current default client, else Dask's configured
        scheduler (threads unless ``dask.config`` says otherwise).
    split_every : int, default 4
        Fan-in of the tree sum of the chunks' results.
    has_aux : bool, default False
        ``fn`` returns ``(loss, aux)``; the call then returns ``((value, aux), grads)``.
        Each leaf of ``aux`` is joined from the chunks by what the graph proves it is:
        per example (concatenated along its example axis), linear in sums over
        examples like the loss (weighted and summed), or independent of the batch
        (taken once); anything else is a BatchAxisError (graphc/dask_aux.py).

    Returns
    -------
    DaskValueAndGrad
        Called with ``fn``'s arguments, returns ``(value, grads)`` as NumPy values,
        equal to ``graphc.value_and_grad(fn, argnums)`` on the whole batch.  The batch
        arguments are positional; keyword arguments (static values such as
        ``reduction="mean"``, and NumPy arrays) go to every chunk unchanged, and a
        Dask array passed by keyword is a SignatureError.  The proof, the chunk
        weights and the generated modules are made once per chunking and kept.

    Raises
    ------
    graphc.dask.BatchAxisError
        The loss is not provably a mean or sum of per-example terms (at the
        first call; names the line that mixes the examples).

    Examples
    --------
    >>> import numpy as np, dask.array as da, graphc.dask
    >>> def loss(w, x, y):
    ...     return np.mean((x @ w - y) ** 2)
    >>> x = np.arange(10.0).reshape(5, 2); y = np.ones(5); w = np.array([0.1, -0.2])
    >>> vg = graphc.dask.value_and_grad(loss, batch_argnums=(1, 2))
    >>> import dask
    >>> with dask.config.set(scheduler="synchronous"):   # no client: Dask's configured scheduler
    ...     value, g = vg(w, da.from_array(x, chunks=(3, 2)), da.from_array(y, chunks=3))
    >>> v1, g1 = graphc.value_and_grad(loss)(w, x, y)
    >>> bool(np.isclose(value, v1)), bool(np.allclose(g, g1))
    (True, True)
    """
    return DaskValueAndGrad(fn, argnums, batch_argnums, client, split_every, has_aux)


class DaskValueAndGrad:
    """What :func:`value_and_grad` returns: call it like the loss."""

    def __init__(self, fn, argnums, batch_argnums, client, split_every, has_aux=False):
        from .api import value_and_grad as _value_and_grad
        if isinstance(batch_argnums, (int, np.integer)) and not isinstance(batch_argnums, bool):
            batch_argnums = (int(batch_argnums),)
        if (not isinstance(batch_argnums, tuple) or not batch_argnums
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in batch_argnums)):
            raise OptionError(f"graphc.dask.value_and_grad: batch_argnums must be an int or a "
                              f"non-empty tuple of ints, got {batch_argnums!r}")
        if not isinstance(split_every, int) or split_every < 2:
            raise OptionError(f"graphc.dask.value_and_grad: split_every must be an int >= 2, "
                              f"got {split_every!r}")
        self._fn, self._argnums, self._batch = fn, normalize_argnums(argnums), batch_argnums
        self._client, self._split_every = client, split_every
        self._has_aux = bool(has_aux)
        self._vg = _value_and_grad(fn, argnums, has_aux=self._has_aux)
        self._plans: dict = {}
        self._lock = threading.Lock()
        self.__name__ = f"{getattr(fn, '__name__', 'fn')}_dask_value_and_grad"

    def __getstate__(self):       # pickles as the function and options (plans are rebuilt)
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_plans", "_client")}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock(), _plans={}, _client=None)

    def __repr__(self):
        return f"<graphc.dask.value_and_grad of {getattr(self._fn, '__name__', self._fn)!r}>"

    def _positions(self, nargs):
        where = user_where(3)
        batch = tuple(i % nargs if -nargs <= i < nargs else None for i in self._batch)
        nums = self._argnums if isinstance(self._argnums, tuple) else (self._argnums,)
        if None in batch or len(set(batch)) != len(batch):
            raise OptionError(f"graphc.dask.value_and_grad: batch_argnums {self._batch} do not "
                              f"name distinct arguments of {nargs}", where=where)
        if {i % nargs for i in nums if -nargs <= i < nargs} & set(batch):
            raise OptionError("graphc.dask.value_and_grad: an argument cannot be both "
                              "differentiated (argnums) and split over examples (batch_argnums)",
                              where=where, hint="differentiate the parameters, split the data")
        return batch

    def _batch_arrays(self, args, batch):
        import dask.array as da
        where = user_where(3)
        arrays = []
        for i in batch:
            x = args[i]
            if not isinstance(x, da.Array) or x.ndim == 0:
                raise SignatureError(
                    f"graphc.dask.value_and_grad: argument {i} (a batch argument) must be a Dask "
                    f"array with an example axis, got {type(x).__name__}", where=where,
                    hint="da.from_array(x, chunks=(rows_per_chunk,) + x.shape[1:])")
            if any(np.isnan(c) for c in x.chunks[0]):
                raise SignatureError(f"graphc.dask.value_and_grad: argument {i} has unknown "
                                     "chunk sizes", where=where, hint="call x.compute_chunk_sizes()")
            arrays.append(x)
        rows = _no_single_rows(arrays[0].chunks[0])
        for i, x in zip(batch, arrays):
            if x.shape[0] != arrays[0].shape[0]:
                raise SignatureError(f"graphc.dask.value_and_grad: batch arguments {batch[0]} and "
                                     f"{i} have {arrays[0].shape[0]} and {x.shape[0]} rows",
                                     where=where)
        return [x.rechunk((rows,) + tuple((n,) for n in x.shape[1:])) for x in arrays], rows

    def _plan(self, args, batch, rows, kwargs):
        """``{rows: (module text, weight, aux kinds or None)}``."""
        from .compiled import _args_key, _key_of
        key = (tuple(rows), _args_key(batch_specs(args, batch, sum(rows))), _key_of(kwargs))
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                states = {} if self._has_aux else None
                weights = prove_split(self._fn, args, batch, [int(r) for r in rows],
                                      kwargs=kwargs, states=states)
                kinds = None
                if states is not None:
                    from .capture import def_where
                    from .dask_aux import aux_kinds
                    counts = {r: list(rows).count(r) for r in weights}
                    kinds = aux_kinds(states, counts, where=def_where(self._fn))
                plan = {r: (self._vg.source(*batch_specs(args, batch, r), **kwargs), w,
                            None if kinds is None else [k[r] for k in kinds])
                        for r, w in weights.items()}
                self._plans[key] = plan
        return plan

    def _check_kwargs(self, kwargs):
        import dask.array as da
        for k, v in kwargs.items():
            if any(isinstance(leaf, da.Array) for leaf in _leaves(v)):
                raise SignatureError(
                    f"graphc.dask.value_and_grad: keyword argument {k!r} is a Dask array; "
                    "batch arguments are positional (batch_argnums)", where=user_where(3),
                    hint="pass it positionally and name its position in batch_argnums, or "
                         "pass a NumPy array (sent to every chunk)")

    def __call__(self, *args, **kwargs):
        import dask
        batch = self._positions(len(args))
        self._check_kwargs(kwargs)
        arrays, rows = self._batch_arrays(args, batch)
        plan = self._plan(args, batch, rows, kwargs)
        name = self._vg.export_name()
        shared = tuple(None if i in batch else a for i, a in enumerate(args))
        client = self._active_client()
        if client is not None:
            shared = client.scatter([shared], broadcast=True, hash=False)[0]
        else:
            shared = dask.delayed(shared, traverse=False)
        blocks = [x.to_delayed().ravel() for x in arrays]
        task = dask.delayed(_chunk, pure=True)
        parts = [task(plan[int(r)][0], name, plan[int(r)][1], shared, batch,
                      [b[k] for b in blocks], kwargs, plan[int(r)][2])
                 for k, r in enumerate(rows)]
        total = _tree_sum(parts, self._split_every)
        if client is not None:
            total = client.compute(total).result()
        else:
            total = dask.compute(total)[0]
        if self._has_aux:
            from .dask_aux import unwrap_aux
            (value, aux), grads = total
            return (value, unwrap_aux(aux)), grads
        return total

    def _active_client(self):
        if self._client is not None:
            return self._client
        try:
            from distributed import default_client
            return default_client()
        except (ImportError, ValueError):
            return None


def _no_single_rows(rows):
    """Row chunks with each 1-row chunk merged into a neighbour (one row tells nothing
    about which axis is the example axis; graphc's proof reads it from the sizes)."""
    out = []
    for r in rows:
        if r == 1 and out:
            out[-1] += 1
        elif out and out[-1] == 1:
            out[-1] += int(r)
        else:
            out.append(int(r))
    return tuple(out)


def _tree_sum(parts, k):
    import dask
    add = dask.delayed(_add, pure=True)
    while len(parts) > 1:
        parts = [add(*parts[i:i + k]) if len(parts[i:i + k]) > 1 else parts[i]
                 for i in range(0, len(parts), k)]
    return parts[0]


# --- what runs on the workers -----------------------------------------------------------------
_MODULES: dict = {}
_MODULES_LOCK = threading.Lock()


def _module(source, name):
    """The generated function of ``source``, executed once per process."""
    key = (hashlib.sha256(source.encode()).hexdigest(), name)
    fn = _MODULES.get(key)
    if fn is None:
        with _MODULES_LOCK:
            fn = _MODULES.get(key)
            if fn is None:
                fn = _MODULES[key] = loader.exec_module(source, name, f"dask:{name}")
    return fn


def _chunk(source, name, weight, shared, batch, blocks, kwargs=None, aux=None):
    """One chunk's weighted ``(value, grads)`` (``((value, aux), grads)`` with ``aux``,
    the kind of each aux leaf: graphc/dask_aux.py)."""
    args = list(shared)
    for i, block in zip(batch, blocks):
        args[i] = block
    out = _module(source, name)(*args, **(kwargs or {}))
    if aux is None:
        return _scale(out, weight)
    from .dask_aux import wrap_aux
    (value, extra), grads = out
    return (_scale(value, weight), wrap_aux(extra, aux)), _scale(grads, weight)


def _leaves(x):
    if isinstance(x, dict):
        return [leaf for v in x.values() for leaf in _leaves(v)]
    if isinstance(x, (list, tuple)):
        return [leaf for v in x for leaf in _leaves(v)]
    return [x]


def _scale(tree, w):
    if isinstance(tree, tuple):
        return tuple(_scale(t, w) for t in tree)
    if isinstance(tree, list):
        return [_scale(t, w) for t in tree]
    if isinstance(tree, dict):
        return {k: _scale(v, w) for k, v in tree.items()}
    return tree if w == 1.0 else tree * w


def _add(*trees):
    first = trees[0]
    if isinstance(first, tuple):
        return tuple(_add(*parts) for parts in zip(*trees))
    if isinstance(first, list):
        return [_add(*parts) for parts in zip(*trees)]
    if isinstance(first, dict):
        return {k: _add(*(t[k] for t in trees)) for k in first}
    total = first
    for t in trees[1:]:
        total = total + t
    return total


if importlib.util.find_spec("dask") is None:   # the example needs Dask (an optional extra)
    value_and_grad.__doc__ = value_and_grad.__doc__.split("    Examples")[0]
