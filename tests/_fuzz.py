"""Hypothesis settings shared by the random-program tests (tests/test_*_fuzz.py).

Hypothesis draws only a seed; each file draws its program from it with its own generator
(its strategies would shrink towards small, alphabetically first programs).  No shrinking
in the long runs either: a smaller seed is an unrelated program.  A failure prints the seed,
and the assertion message prints the program.
"""
import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

#: Programs per property in `make fuzz` (the environment variable GRAPHC_FUZZ_EXAMPLES).
LONG = int(os.environ.get("GRAPHC_FUZZ_EXAMPLES", "2000"))
SEEDS = st.integers(0, 2**32 - 1)
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]


def quick(n):
    """``make test``: the same ``n`` programs on every run."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=_HEALTH, phases=[Phase.explicit, Phase.generate])


def long(n=LONG):
    """``make fuzz``: ``n`` new programs per run (failures replayed first)."""
    return settings(max_examples=max(1, n), deadline=None, suppress_health_check=_HEALTH,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])
