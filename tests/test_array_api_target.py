"""The ``"array-api"`` target (issue 17, API.md section 10).

Registry-driven: every primitive's array-API emission (``array_api=`` of its record,
or the form derived from its NumPy template) runs on each sample of its record on
``array_api_strict`` (2024.12) and is compared with the NumPy target bit for bit
(value equality, NaN where NaN), and on PyTorch CPU tensors; a static check that the
modules hold no ``np.``, ``out=`` or in-place writes; and whole programs (the
lecture's function, an MLP, LeNet) whose value and gradient on strict, PyTorch and
JAX (also under ``jax.jit``) match the NumPy target.
"""
from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

import graphc
from graphc.errors import OptionError, UnsupportedError
from graphc.ops._samples import Draw
from graphc.primitive import REGISTRY
from graphc.xp_emit import has_xp_form

xps = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")
xps.set_array_api_strict_flags(api_version="2024.12")

HERE = os.path.dirname(__file__)
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
SEED = 20240607

#: Primitives without an array-API form: compiling them for the target is a clear error.
NO_FORM = {
    "cbrt": "the standard has no cube root, and x ** (1/3) is not NumPy's correctly rounded one",
    "logaddexp2": "no logaddexp2 in the standard",
    "einsum": "no einsum in the standard",
    "partition_perm": "no partition in the standard",
    "guard": "guards (decisions on values) are NumPy-target only",
}

#: Sample variants the array-API form refuses (a clear UnsupportedError), and why:
#: {(primitive or "*", text in the sample's description): reason}.
REFUSED = {
    ("*", "f16"): "float16 is not a dtype of the standard",
    ("round", "bool"): "np.round of a bool is float16",
    ("rint", "bool"): "np.rint of a bool is float16",
    ("round", "int"): "integers rounded to negative decimals (NumPy rounds half to even)",
    ("getitem", "separated"): "integer arrays on axes apart (NumPy moves their axis first)",
    ("scatter_add", "separated"): "as getitem",
    ("getitem", "1:3,None"): "an integer array with slices and None",
}

#: Ops whose array-API form is not bit-identical to NumPy's, with the reason; compared
#: to a few ulps instead.
TOLERANT = {
    "exp2": "xp.pow(2.0, x) instead of np.exp2 (different libm routines)",
    "cholesky": "array_api_compat's upper=True factor is the transposed lower one; NumPy's "
                "LAPACK call computes the upper one (rounded differently)",
}


def samples_of(name):
    prim = REGISTRY[name]
    return prim.samples(Draw(np.random.default_rng([SEED, zlib.crc32(name.encode())])))


CASES = [pytest.param(name, i, case, id=f"{name}-{i}-{case.desc}")
         for name in sorted(REGISTRY) if name not in NO_FORM
         for i, case in enumerate(samples_of(name))]


def to_strict(a):
    if isinstance(a, (np.ndarray, np.generic)):
        return xps.asarray(np.asarray(a))
    return a


def from_any(x):
    """A NumPy copy of an array of any namespace."""
    if isinstance(x, (tuple, list)):
        return type(x)(from_any(v) for v in x)
    if isinstance(x, dict):
        return {k: from_any(v) for k, v in x.items()}
    if type(x).__module__.startswith("array_api_strict"):
        return np.asarray(x._array)
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def assert_same(got, want, name):
    got, want = from_any(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
    if name in TOLERANT:
        np.testing.assert_array_max_ulp(got, want, maxulp=4)
    else:
        np.testing.assert_array_equal(got, want, strict=True)


def _refused(name, case, err):
    if not any(op in ("*", name) and text in case.desc for op, text in REFUSED):
        raise err


def _run(name, case, convert):
    prim = REGISTRY[name]

    def apply(*xs):
        return prim(*xs, **case.params)
    apply.__name__ = f"apply_{name}"
    want = graphc.compile(apply)(*case.args)
    try:
        got = graphc.compile(apply, target="array-api")(*[convert(a) for a in case.args])
    except UnsupportedError as err:
        _refused(name, case, err)
        pytest.skip(f"refused (see REFUSED): {err}")
    return got, want


# --- every primitive, on array_api_strict: the NumPy target's bits --------------------------
@pytest.mark.parametrize("name, i, case", CASES)
def test_strict_matches_numpy_target(name, i, case):
    if name == "bernoulli":
        pytest.skip("dropout masks come from a hash on this target: test_keep_mask_*")
    got, want = _run(name, case, to_strict)
    assert_same(got, want, name)


@pytest.mark.parametrize("name, i, case", CASES)
def test_torch_matches_numpy_target(name, i, case):
    torch = pytest.importorskip("torch")
    if name == "bernoulli":
        pytest.skip("dropout masks come from a hash on this target: test_keep_mask_*")

    def convert(a):
        if isinstance(a, (np.ndarray, np.generic)):       # (torch takes no negative strides)
            return torch.asarray(np.array(a))
        return a
    got, want = _run(name, case, convert)
    got, want = from_any(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind in "fc":
        tol = 1e-5 if want.dtype.itemsize < 8 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


def test_primitives_without_a_form_are_listed_and_refused():
    missing = {name for name, prim in REGISTRY.items() if not has_xp_form(prim)}
    assert missing == set(NO_FORM)
    x = np.array([1.0, 8.0])
    with pytest.raises(UnsupportedError, match="cbrt has no array-API emission"):
        graphc.compile(np.cbrt, target="array-api")(x)


def test_unknown_target_lists_the_targets():
    with pytest.raises(OptionError, match="'numpy', 'array-api'"):
        graphc.compile(np.sin, target="cuda")
    with pytest.raises(OptionError, match="unknown target"):
        graphc.grad(np.sin, target="jax")
