"""The drawing options of ``render`` / ``to_dot``, and the check of their values."""
from __future__ import annotations

import numpy as np

from .errors import OptionError

__all__ = ["DRAW_OPTIONS", "check_options"]

# The drawing options of render / to_dot, and the values each accepts.
DRAW_OPTIONS = {
    "backward": "True, False or None",
    "collapse": "True, False, None, a scope name or a list of scope names",
    "flops": "True or False",
    "legend": "True or False",
    "rankdir": "'TB', 'LR', 'BT' or 'RL'",
    "dpi": "a positive number (PNG pixels per inch), or None",
    "size": "(width, height) in inches, both positive, or None",
    "values": "True or False (needs example arguments)",
    "plumbing": "True, False or None (reshapes and transposes as nodes; None: in small drawings)",
}
_RANKDIRS = ("TB", "LR", "BT", "RL")


def _valid_option(name, value) -> bool:
    bools = (bool, np.bool_)
    if name in ("backward", "plumbing"):
        return value is None or isinstance(value, bools)
    if name in ("flops", "legend", "values"):
        return isinstance(value, bools)
    if name == "dpi":
        return value is None or _positive(value)
    if name == "size":
        if value is None:
            return True
        try:
            w, h = value
        except (TypeError, ValueError):
            return False
        return not isinstance(value, str) and _positive(w) and _positive(h)
    if name == "rankdir":
        return isinstance(value, str) and value in _RANKDIRS
    if name == "collapse":
        if value is None or isinstance(value, (*bools, str)):
            return True
        try:
            items = list(value)
        except TypeError:
            return False
        return all(isinstance(v, str) for v in items)
    return False


def _positive(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and bool(np.isfinite(v)) and v > 0


def check_options(**options) -> None:
    """OptionError naming the first drawing option with a value it does not take."""
    for name, value in options.items():
        if name not in DRAW_OPTIONS:
            raise OptionError(f"{name}={value!r} is not a drawing option",
                              hint="drawing options are " + _options_text())
        if not _valid_option(name, value):
            raise OptionError(f"drawing option {name}={value!r} is not valid: {name} takes "
                              f"{DRAW_OPTIONS[name]}",
                              hint=f"pass {name}= one of: {DRAW_OPTIONS[name]}")


def _options_text() -> str:
    return ", ".join(f"{k}= ({v})" for k, v in DRAW_OPTIONS.items())
