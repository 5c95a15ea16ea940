"""Optimizers as pure functions of pytrees.

Each optimizer has ``init(params) -> state`` and
``update(grads, state, params) -> (params, state)``, with no hidden state, so
a whole training step (forward, backward and update) compiles into one
generated function::

    opt = graphc.optim.adam(1e-3)

    @graphc.compile
    def train_step(params, state, x, y):
        loss, grads = graphc.value_and_grad(loss_fn)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss

The step counter of ``adam`` is an ``np.int64`` scalar in the state (the type a
compiled step returns for it), so it is traced data: every step, the first
included, runs the same compiled code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ops import composite as C
from .ops import elementwise as E
from .errors import ShapeError
from .pytree import flatten, tree_map, unflatten

__all__ = ["Optimizer", "sgd", "momentum", "adam"]


@dataclass(frozen=True)
class Optimizer:
    """A pair of pure functions: ``init(params)`` and ``update(grads, state, params)``."""

    init: Callable
    update: Callable
    name: str = "optimizer"

    def __repr__(self):
        return f"<graphc.optim.{self.name}>"


def _check_like(name, params, **trees):
    """A ShapeError (at the user's line) unless each tree's leaves have the parameters'
    shapes: ``p - lr * g`` would broadcast a (1,) gradient over a (3,) parameter silently."""
    leaves, tdef, paths = flatten(params)
    for what, tree in trees.items():
        other, odef, _ = flatten(tree)
        if odef != tdef:
            raise ShapeError(f"graphc.optim.{name}.update: the {what} and the parameters are "
                             f"different pytrees: {odef!r} vs {tdef!r}")
        for p, x, path in zip(leaves, other, paths):
            if np.shape(x) != np.shape(p):
                where = "".join(f"[{k!r}]" for k in path) or "(the array)"
                raise ShapeError(
                    f"graphc.optim.{name}.update: the {what} at {where} has shape "
                    f"{tuple(np.shape(x))} but the parameter has shape {tuple(np.shape(p))}",
                    hint="pass the gradients of these parameters, and a state from "
                         "init() of parameters of the same shapes")


def _zeros_like(p):
    z = np.zeros(np.shape(p), dtype=p.dtype)
    # A NumPy scalar gets a NumPy scalar: what a compiled step returns for it.
    return z[()] if isinstance(p, np.generic) else z


def _cast(value, like):
    """A scalar hyper-parameter expression in ``like``'s dtype (float32 stays float32)."""
    dtype = like.dtype
    return C.astype(value, dtype) if getattr(value, "dtype", dtype) != dtype else value


def sgd(lr):
    """Plain gradient descent: ``p = p - lr * g``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> opt = graphc.optim.sgd(0.1)
    >>> params, state = opt.update({"w": np.array([1.0])}, opt.init({"w": np.zeros(1)}), {"w": np.zeros(1)})
    >>> params["w"]
    array([-0.1])
    """
    def init(params):
        return ()

    def update(grads, state, params):
        _check_like("sgd", params, gradients=grads)
        return tree_map(lambda p, g: p - lr * g, params, grads), state
    return Optimizer(init, update, "sgd")


def momentum(lr, beta=0.9):
    """Heavy-ball momentum, as PyTorch's SGD with momentum:
    ``v = beta * v + g; p = p - lr * v``."""
    def init(params):
        return {"velocity": tree_map(_zeros_like, params)}

    def update(grads, state, params):
        _check_like("momentum", params, gradients=grads, velocity=state["velocity"])
        v = tree_map(lambda v, g: beta * v + g, state["velocity"], grads)
        return tree_map(lambda p, v: p - lr * v, params, v), {"velocity": v}
    return Optimizer(init, update, "momentum")


def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
    """Adam, as PyTorch's (bias-corrected moments; ``eps`` added to ``sqrt(v_hat)``).

    ``p = p - lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1**t)``
    and ``v_hat = v / (1 - b2**t)``.
    """
    def init(params):
        return {"step": np.int64(0), "m": tree_map(_zeros_like, params),
                "v": tree_map(_zeros_like, params)}

    def update(grads, state, params):
        _check_like("adam", params, gradients=grads, first_moment=state["m"],
                    second_moment=state["v"])
        t = state["step"] + 1
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * (g * g), state["v"], grads)
        tf = C.astype(t, np.float64)
        corr1 = 1 - b1 ** tf
        corr2 = 1 - b2 ** tf

        def step(p, m, v):
            step_size = _cast(lr / corr1, p)
            denom = E.sqrt(v) / _cast(E.sqrt(corr2), p) + eps
            return p - step_size * (m / denom)
        leaves_p, tdef, _ = flatten(params)
        new = [step(p, mm, vv) for p, mm, vv in zip(leaves_p, flatten(m)[0], flatten(v)[0])]
        return unflatten(tdef, new), {"step": t, "m": m, "v": v}
    return Optimizer(init, update, "adam")
