"""Two negations around one product cancel: a simplify rule.

The gradient of ``h = 1 / (1 + np.exp(-z))`` (the sigmoid written by hand, W3) reads,
by the chain rule through ``1 / a``, ``np.exp`` and the negation::

    d_add = -(d_h * h / add)
    d_z = -(d_add * exp)

two negations of a 256×3 array that cancel: ``d_z = d_h * h / add * exp``.

:func:`cancel_negations` rewrites ``-(-a * b)``, ``-(b * -a)``, ``-(-a / b)`` and
``-(b / -a)`` into ``a * b``, ``b * a``, ``a / b`` and ``b / a`` for floating-point
values, when the inner negation and the product are used only there.  IEEE rounding
to nearest is symmetric in sign, so ``(-a) * b`` is ``-(a * b)`` exactly, zeros'
signs and infinities included: the result is the same bit for bit, except the sign
bit of a nan (``a * nan`` keeps the nan's sign, ``-(-a * nan)`` flips it), which no
comparison, arithmetic or ``np.isnan`` sees.  Integers are left alone.
"""
from __future__ import annotations

__all__ = ["cancel_negations"]

_NAMES = ("name", "hint", "adjoint_of", "tangent_of")     # (ir._CARRIED)


def cancel_negations(graph, nid, node) -> bool:
    """Rewrite ``neg(mul(neg(a), b))`` (and the other three forms above) into
    ``mul(a, b)``; True when it did."""
    if node.op != "neg" or node.dtype.kind != "f":
        return False
    (m,) = node.args
    mn = graph[m]
    if mn.op not in ("mul", "div") or mn.dtype != node.dtype or m in graph.outputs \
            or len(graph.users(m)) != 1 or len(mn.args) != 2:
        return False
    for i, a in enumerate(mn.args):
        an = graph[a]
        if an.op != "neg" or mn.args.count(a) != 1 or a in graph.outputs \
                or len(graph.users(a)) != 1:
            continue
        (inner,) = an.args
        if graph[inner].dtype != an.dtype or graph[inner].weak != an.weak:
            continue
        args = list(mn.args)
        args[i] = inner
        graph.set_args(m, tuple(args))
        # the product now holds the outer negation's value: its names (d_<name>) too
        for attr in _NAMES:
            setattr(mn, attr, getattr(node, attr))
        graph.replace_uses(nid, m, carry=())
        return True
    return False
