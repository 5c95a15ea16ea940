"""np.random inside a traced function: noticed, and refused.

Random numbers drawn while graphc traces become constants of the graph: every call
of the compiled function would reuse them (NumPy-style dropout would get one mask
forever).  graphc refuses that.  np.random's functions are compiled code that no
Python hook sees, so the watch compares random *states* before and after the trace:
NumPy's global RandomState, and every Generator / RandomState the user's functions
can reach while traced (their globals, arguments, closures and attributes of those,
found by the profile hook at each call).  A generator created and dropped inside the
traced function (np.random.default_rng(0)) is not a persistent stream: freezing its
numbers is exactly what every call would compute, so it is allowed.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

from . import errors
from .errors import UnsupportedError
from .user_code import is_user_code

__all__ = ["RandomWatch"]

_RNG_TYPES = (np.random.Generator, np.random.RandomState)


def _global_rng_state():
    """A cheap fingerprint of np.random's global MT19937 state (key words and position)."""
    import ctypes
    bg = np.random.mtrand._rand._bit_generator
    try:
        return ctypes.string_at(bg.ctypes.state_address, 624 * 4 + 4)
    except Exception:                    # another layout or no ctypes: the slow, exact way
        return _frozen(bg.state)


def _rng_state(rng):
    if isinstance(rng, np.random.Generator):
        return _frozen(rng.bit_generator.state)
    return _frozen(rng.get_state(legacy=False))     # a RandomState: its cached gauss too


def _frozen(v):
    if isinstance(v, dict):
        return tuple((k, _frozen(x)) for k, x in sorted(v.items()))
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.shape, v.tobytes())
    return v


class RandomWatch:
    """Notices random numbers drawn from persistent NumPy random streams during a trace."""

    def __init__(self):
        self.global_state = _global_rng_state()
        self.seen = {}                    # id(rng) -> (rng, state when first reachable)

    def scan(self, frame):
        """Note the generators a user frame can reach, with their state, at its call."""
        names = frame.f_code.co_names
        for v in list(frame.f_locals.values()) + [frame.f_globals.get(n) for n in names]:
            self._note(v)
            d = getattr(v, "__dict__", None) if v is not None else None
            if isinstance(d, dict) and not isinstance(v, type(sys)):
                for n in names:          # self.rng, model.rng
                    self._note(d.get(n))

    def _note(self, v):
        if isinstance(v, _RNG_TYPES) and id(v) not in self.seen:
            self.seen[id(v)] = (v, _rng_state(v))

    def check(self, top_code):
        """Raise (or warn) when the traced code drew from a persistent random stream."""
        drawn = None
        for rng, state in self.seen.values():
            # only the watch holds it now: a generator local to the trace, which is fine
            if sys.getrefcount(rng) > 3 and _rng_state(rng) != state:
                drawn = "a numpy.random.Generator that outlives the call"
        self.seen.clear()
        global_drawn = _global_rng_state() != self.global_state
        if drawn is None and not global_drawn:
            return
        if drawn is None and _other_threads_running():
            # np.random's global state is shared by all threads: another one may have drawn
            import warnings
            warnings.warn(_random_message("np.random's global state changed", top_code) +
                          " (or another thread drew from np.random meanwhile)",
                          RuntimeWarning, stacklevel=_user_stacklevel())
            return
        raise UnsupportedError(
            _random_message(f"random numbers were drawn from {drawn or 'np.random'}", top_code),
            where=_code_where(top_code),
            hint="for dropout use graphc.nn.dropout(x, rate, key) with a key that changes per "
                 "step (np.int64(step)); draw other random arrays outside the traced function "
                 "and pass them in as arguments")


def _other_threads_running() -> bool:
    """Another non-daemon thread is alive (daemon helpers, e.g. Jupyter's, do not count)."""
    me = threading.current_thread()
    return any(t is not me and not t.daemon and t.is_alive() for t in threading.enumerate())


def _random_message(what, top_code):
    fn = f" {top_code.co_name}" if top_code is not None else ""
    return (f"{what} while graphc traced the function{fn}: they would be frozen into the "
            "compiled function as constants, so every call would reuse the same numbers "
            "(e.g. one dropout mask forever)")


def _code_where(code):
    return errors.where_text(code.co_filename, code.co_firstlineno) if code is not None else None


def _user_stacklevel():
    frame, level = sys._getframe(1), 1
    while frame is not None and not is_user_code(frame.f_code):
        frame, level = frame.f_back, level + 1
    return level
