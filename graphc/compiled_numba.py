"""Compiled callables for the ``"numba"`` target (fused CPU loops).

:class:`NumbaCompiled` is a :class:`graphc.compiled.Compiled` whose code comes
from :mod:`graphc.codegen_numba`: the NumPy target's module with each chain of
elementwise ops written as one ``@numba.njit`` loop kernel.  Needs numba
(``pip install numba``, the ``numba`` extra); without it, choosing the target is
a clear :class:`~graphc.errors.OptionError`.
"""
from __future__ import annotations

from .compiled import Compiled
from .errors import OptionError

__all__ = ["NumbaCompiled", "require_numba"]


class NumbaCompiled(Compiled):
    """A compiled function whose generated code fuses elementwise chains with numba."""

    target = "numba"

    def __init__(self, fn, kind="compile", argnums=0, has_aux=False, *, cache_size,
                 check_finite=False):
        if check_finite:
            raise OptionError('check_finite=True works with target="numpy" only',
                              hint='check the results with target="numpy" while debugging')
        require_numba()
        super().__init__(fn, kind, argnums, has_aux, cache_size=cache_size)

    def _generate(self):
        from . import codegen_numba
        return codegen_numba.generate_module


def require_numba():
    """Import numba, or an OptionError saying how to install it."""
    try:
        import numba  # noqa: F401
    except ImportError:
        raise OptionError('target="numba" needs the numba package',
                          hint="pip install numba (or pip install graphc[numba])") from None
