"""Random programs (tests/test_fuzz.py's) on another target against the NumPy target."""
import numpy as np

import graphc
from test_fuzz import _as_fn, draw_program


def _leaves(tree):
    return [np.asarray(v) for v in graphc.pytree.flatten(tree)[0]]


def assert_same_up_to_rounding(got, want, rtol, prog, target):
    got, want = _leaves(got), _leaves(want)
    assert len(got) == len(want), prog
    for i, (u, v) in enumerate(zip(got, want)):
        assert u.shape == v.shape and u.dtype == v.dtype, \
            f"output {i}: {u.dtype}{list(u.shape)} vs the NumPy target's {v.dtype}{list(v.shape)}\n{prog}"
        scale = max(1.0, float(np.max(np.abs(v), initial=0.0)))
        err = np.abs(u.astype(np.float64) - v.astype(np.float64))
        assert np.all(err <= rtol * scale), \
            f"output {i}: {target} {u} vs the NumPy target {v} (max error {np.max(err)})\n{prog}"


def check(seed, dtype, target):
    """Program ``seed`` in ``dtype``: compiled outputs and value_and_grad on ``target``
    equal the NumPy target's up to the C library's rounding."""
    prog = draw_program(seed)
    xs = [x.astype(dtype) for x in prog.inputs]
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for kind, make in (("outputs", graphc.compile),
                       ("loss", lambda f, **k: graphc.value_and_grad(f, argnums=(0, 1, 2), **k))):
        f = _as_fn(prog, kind)
        with np.errstate(all="ignore"):
            want = make(f)(*xs)
            got = make(f, target=target)(*xs)
        assert_same_up_to_rounding(got, want, rtol, prog, target)
