"""Which positional arguments a transform differentiates: one rule for ``argnums``.

``graphc.grad``/``value_and_grad`` (when built and when called), ``graphc.render``
and the CLI's ``--argnums`` all check ``argnums`` here, and all pick the same
arguments when it is not given (:func:`default_argnums`).
"""
from __future__ import annotations

import numpy as np

from .errors import GradError
from .pytree import flatten


def normalize_argnums(argnums, n_args=None, *, option=None) -> tuple:
    """``argnums`` as a tuple of distinct non-negative positions.

    Parameters
    ----------
    argnums : int or tuple of int
        Positions of positional arguments, counted from 0; negative ones count
        from the end (``-1`` is the last).  A list is read as a tuple.
    n_args : int, optional
        How many positional arguments the function is called with.  Without
        it (when a transform is built, before any call) only the type and
        repeats of literal values are checked, and negative positions are kept.
    option : str, optional
        How error messages name the option (default ``argnums=<value>``; the
        CLI passes ``--argnums 0,1``).

    Returns
    -------
    tuple of int

    Raises
    ------
    graphc.errors.GradError
        ``argnums`` is not an int or a non-empty tuple of ints (a bool is no
        position), a position is out of range, or one position is named twice.

    Examples
    --------
    >>> normalize_argnums(-1, 3)
    (2,)
    >>> normalize_argnums((0, 2), 3)
    (0, 2)
    >>> normalize_argnums((0, -3), 3)   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    graphc.errors.GradError: ...argnums=(0, -3) names argument 0 twice...
    """
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if not isinstance(nums, (tuple, list)) or not nums or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in nums):
        raise GradError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}",
                        hint="e.g. argnums=0 or argnums=(0, 1)")
    option = option or f"argnums={argnums!r}"
    if n_args is not None:
        for a in nums:
            if not -n_args <= a < n_args:
                raise GradError(
                    f"{option}: {a} is out of range, the function is called with "
                    f"{n_args} positional argument{'s' if n_args != 1 else ''}",
                    hint="argnums counts positional arguments from 0")
        nums = tuple(a % n_args for a in nums)
    seen = set()
    for a in nums:
        if a in seen:
            raise GradError(f"{option} names argument {a} twice",
                            hint="list each argument to differentiate once")
        seen.add(a)
    return tuple(nums)


def _is_floating(leaf) -> bool:
    if isinstance(leaf, bool):
        return False
    if isinstance(leaf, float):
        return True
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and np.dtype(dtype).kind == "f"


def _tree_kinds(tdef):
    """The node kinds of a TreeDef (``"static"`` for a Python int/bool/str leaf)."""
    return {tdef.kind}.union(*(_tree_kinds(c) for c in tdef.children))


def floating_argnums(args) -> tuple:
    """Positions of the positional arguments that hold only floats (at least one).

    A Python float, a float array or NumPy scalar, a float ``graphc.Spec``, or a
    dict / list / tuple of them; Python ints and bools are static, integer
    arrays are data.  A pytree holding a static int/bool/str is not floating:
    asking for its gradient is a ``GradError``.

    Examples
    --------
    >>> import numpy as np
    >>> floating_argnums((np.ones(3), np.arange(3), 2.0, 4, {"w": 1.0, "n": 3}))
    (0, 2)
    """
    nums = []
    for i, a in enumerate(args):
        leaves, tdef, _ = flatten(a)
        if leaves and all(_is_floating(x) for x in leaves) and "static" not in _tree_kinds(tdef):
            nums.append(i)
    return tuple(nums)


def default_argnums(args):
    """``argnums`` when none is given: every floating positional argument, else 0.

    An int when one argument is floating (its gradient comes back bare, as
    ``graphc.grad``'s default gives it), a tuple when several are.

    Examples
    --------
    >>> import numpy as np
    >>> default_argnums((np.ones(3), np.arange(3)))
    0
    >>> default_argnums((np.ones(3), 1.0))
    (0, 1)
    """
    nums = floating_argnums(args)
    if not nums:
        return 0
    return nums[0] if len(nums) == 1 else nums
