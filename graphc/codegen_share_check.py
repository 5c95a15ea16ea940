"""The ReLU gradient's nan check, moved onto the sum that follows it.

``max_share``'s ReLU form (graphc/ops/max_share.py) multiplies by ``out / a`` and then
looks for a nan in the product (a tie at 0, a nan, ``inf * 0``) with ``d.max()``, a
pass over the whole array.  In a dense layer the next statement is the bias gradient,
a sum of that same array (``d_b1 = d_add.sum(axis=0)``), and a sum is nan wherever
one of its terms is: so the check reads the (much smaller) sum instead, and the rare
exact path computes the sum again from the corrected product::

    with np.errstate(invalid="ignore"):  # 0/0 at a tie: nan, for the exact rule below
        d_add = h1 / add  # the weights: 1 where add > 0, else 0
    d_add *= d_h1
    d_b1 = d_add.sum(axis=0)
    if np.isnan(d_b1.max()):  # a nan in d_add: a tie at 0, a nan or inf * 0
        d_add = d_h1 * (0.5 + 0.5 * np.sign(add))
        np.copyto(d_add, 0, where=add < 0)
        d_b1 = d_add.sum(axis=0)

A sum that is nan without a nan term (``inf + -inf``) only sends the call down the
exact path, which gives the same product and the same sum.  Every element of the
product is a term of the sum (a sum over any axes adds each element once), so no nan
can hide.
"""
from __future__ import annotations

import re

__all__ = ["share_check_on_sum"]

_WEIGHTS = "  # the weights: 1 where "


def _division_form(lines, d):
    """The six lines of max_share's ReLU form for result ``d``, or False."""
    return (len(lines) == 6 and lines[0].startswith("with np.errstate(")
            and lines[1].startswith(f"    {d} = ") and _WEIGHTS in lines[1]
            and lines[2].startswith(f"{d} *= ") and lines[3].startswith(f"if np.isnan({d}.max()):")
            and lines[4].startswith(f"    {d} = ") and lines[5].startswith("    np.copyto("))


def share_check_on_sum(em, items) -> list:
    """Rewrite ``items`` (codegen's ``(nid, lines)`` statements) in place: where a
    ``max_share`` in the ReLU form is followed at once by a sum of its result, the nan
    check reads the sum (module docstring).  Returns the indices ``i`` of the statements
    whose exact path moved to statement ``i + 1``: what codegen frees after ``i`` (the
    operands that path reads) must be freed after ``i + 1`` instead."""
    g = em.g
    moved = []
    for i in range(len(items) - 1):
        nid, lines = items[i]
        sid, sum_lines = items[i + 1]
        if g[nid].op != "max_share" or g[sid].op != "sum" or tuple(g[sid].args) != (nid,):
            continue
        d, b = em.name.get(nid), em.name.get(sid)
        if (d is None or b is None or g[sid].dtype.kind != "f" or len(sum_lines) != 1
                or not _division_form(lines, d)
                or not re.fullmatch(rf"{re.escape(b)} = {re.escape(d)}\.sum\([^()]*\)", sum_lines[0])):
            continue
        items[i] = (nid, lines[:3])
        items[i + 1] = (sid, [sum_lines[0],
                              f"if np.isnan({b}.max()):  # a nan in {d}: a tie at 0, a nan or inf * 0",
                              lines[4], lines[5], "    " + sum_lines[0]])
        moved.append(i)
    return moved
