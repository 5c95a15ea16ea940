"""target="numba" kernels at memory bandwidth (issue 18): a float32 chain's kernel stays
float32 (``np.float32`` literals, as NumPy computes ``x32 * 0.5``), ``max_share`` (ReLU's
gradient) is a product and a select with no branch, and the kernels give the same values
as the NumPy target bit for bit: ties, NaN and infinite cotangents included (up to the
sign of a zero gradient, which the NumPy target itself leaves to its fast path).  The
column sums accumulate in float64: exactly the float64 sum of the kernel's own elements,
rounded once."""
import platform
import re

import numpy as np
import pytest

import graphc
from graphc.numba_fuse import scalar_form, typed_literals
from graphc.ops.max_share import _ref as share_ref
from test_codegen import check_golden

numba = pytest.importorskip("numba")

SPECIAL = np.array([-np.inf, -1.5, -0.0, 0.0, 1.5, np.inf, np.nan])
COTANGENTS = np.array([-np.inf, -2.0, -0.0, 0.0, 3.0, np.inf, np.nan, 2.0 ** -149])


def _relu_layer(x, b, c):
    return (np.maximum(x + b, 0) * c).sum()


def _max_pair(x, y, c):
    return (np.maximum(x, y) * c).sum()


def _grads(fn, *args):
    """(numba target, NumPy target, numba source) of fn's gradient in every argument
    but the last."""
    argnums = tuple(range(len(args) - 1))
    fused, plain = (graphc.grad(fn, argnums=argnums, **kw) for kw in ({"target": "numba"}, {}))
    with np.errstate(all="ignore"):
        return fused(*args), plain(*args), fused.source(*args)


def _same_bits(got, want):
    """Equal element by element, NaN where NaN, and the same bits where nonzero (a
    zero's sign aside: see the module docstring)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    keep = (want != 0) & ~np.isnan(want)
    assert np.array_equal(got[keep].view(f"u{got.itemsize}"), want[keep].view(f"u{got.itemsize}"))


def _kernel(src):
    return src[src.index("@numba.njit"):src.index("# The arguments")]


def _relu_data(dtype, rows=56, cols=8):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols)).astype(dtype)
    b = rng.standard_normal(cols).astype(dtype)
    x[:4] = -b                                  # ties at 0: half the cotangent
    x[4, :8] = SPECIAL[:7].tolist() + [np.nan]  # inf and nan pre-activations
    c = rng.standard_normal((rows, cols)).astype(dtype)
    c[5:7, :8] = COTANGENTS                     # infinite, nan, signed-zero, subnormal ct
    c[7, :8] = COTANGENTS[::-1]
    x[5], x[6] = -1.0, 1.0                      # (below: inf * 0 is 0; above: passed on)
    return x, b, c


@pytest.mark.parametrize("cols", [8, 64])      # (64: the column sum in a loop of its own)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_mask_and_column_sum_same_bits_as_numpy_target(dtype, cols):
    x, b, c = _relu_data(dtype, cols=cols)
    (d_x, d_b), (w_x, w_b), src = _grads(_relu_layer, x, b, c)
    assert "share = " in src and src.count("def fused_") == 1   # one kernel, the share form
    split = "d_b_acc[j] += d_add_out[i, j]" in src
    assert split == (dtype == np.float32 and cols >= 16)
    _same_bits(d_x, w_x)
    with np.errstate(all="ignore"):
        _same_bits(d_x, share_ref(c, x + b, 0.0).astype(dtype))   # the op's definition
    # the column sum: the float64 sum of the same elements, rounded once
    exact = d_x.astype(np.float64).sum(axis=0).astype(dtype)
    assert np.array_equal(d_b, exact, equal_nan=True)
    fin = np.isfinite(w_b)
    assert np.array_equal(np.isnan(d_b), np.isnan(w_b)) and np.array_equal(d_b[~fin], w_b[~fin], equal_nan=True)
    scale = np.abs(d_x[:, fin]).sum(axis=0)
    assert np.all(np.abs(d_b[fin] - w_b[fin]) <= 64 * np.finfo(dtype).eps * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maximum_of_two_arrays_every_special_pair(dtype):
    """max_share(ct, x, y) and max_share(ct, y, x) for every pair of special values and
    every special cotangent: ties (half), x - y nan (nan), x < y (exactly 0)."""
    xs, ys = np.meshgrid(SPECIAL, SPECIAL, indexing="ij")
    x = np.repeat(xs.reshape(-1, 1), len(COTANGENTS), axis=1).astype(dtype)
    y = np.repeat(ys.reshape(-1, 1), len(COTANGENTS), axis=1).astype(dtype)
    c = np.tile(COTANGENTS, (len(x), 1)).astype(dtype)
    (d_x, d_y), (w_x, w_y), src = _grads(_max_pair, x, y, c)
    assert "def fused_" in src and "share = " in src
    _same_bits(d_x, w_x)
    _same_bits(d_y, w_y)
    with np.errstate(all="ignore"):
        _same_bits(d_x, share_ref(c, x, y).astype(dtype))
        _same_bits(d_y, share_ref(c, y, x).astype(dtype))


def test_float32_kernel_has_float32_literals_only():
    x, b, c = _relu_data(np.float32)
    src = _grads(_relu_layer, x, b, c)[2]
    check_golden("numba_relu_share_f32.py", src)
    kernel = _kernel(src)
    assert "share = c[i, j] * (np.float32(0.5) + np.float32(0.5) * np.sign(add))" in kernel
    assert "np.float32(0.0) if add < np.float32(0.0) else share" in kernel
    # every number in the loop is a float32 (no float64 arithmetic), the column sum's
    # float64 accumulator aside
    numbers = re.findall(r"(?<![\w.])(\d+\.\d*)", kernel)
    typed = re.findall(r"np\.float32\((\d+\.\d*)\)", kernel)
    assert numbers == typed and typed
    src64 = _grads(_relu_layer, *_relu_data(np.float64))[2]
    assert "share = c[i, j] * (0.5 + 0.5 * np.sign(add))" in src64
    assert "np.float32" not in _kernel(src64)


def test_typed_literals():
    assert typed_literals(scalar_form("sigmoid"), np.float32) == \
        "np.exp(np.minimum({0}, np.float32(0.0))) / (np.float32(1.0) + np.exp(-np.abs({0})))"
    assert typed_literals("np.log1p({0}) + np.log10({1}) + 2e-3", np.float32) == \
        "np.log1p({0}) + np.log10({1}) + np.float32(0.002)"
    for dtype in (np.float64, np.bool_):
        assert typed_literals(scalar_form("sigmoid"), dtype) == scalar_form("sigmoid")


def _softplus_loss(x, c):
    return (np.log(1 + np.exp(x)) * c).sum()


def test_float32_softplus_and_sigmoid_round_each_operation_in_float32():
    """softplus and its gradient (sigmoid) have literals in their templates: in float32
    every operation is float32 as in the NumPy target, so the two differ only where libm's
    expf/log1pf and NumPy's own float32 loops do (a few ulps), never by a float64
    intermediate rounded once."""
    rng = np.random.default_rng(1)
    x = (4 * rng.standard_normal((64, 16))).astype(np.float32)
    c = rng.standard_normal((64, 16)).astype(np.float32)
    fused, plain = (graphc.value_and_grad(_softplus_loss, target=t) for t in ("numba", "numpy"))
    (v, d_x), (w, w_x) = fused(x, c), plain(x, c)
    kernel = _kernel(fused.source(x, c))
    assert "np.maximum(x[i, j], np.float32(0.0))" in kernel
    assert "(np.float32(1.0) + np.exp(-np.abs(x[i, j])))" in kernel
    assert d_x.dtype == np.float32 and np.all(np.abs(d_x - w_x) <= 4 * np.spacing(np.abs(w_x)))
    assert abs(v - w) <= 1e-5 * np.abs(x * c).sum()


def _loss_and_layer(x, b, c):
    return (np.maximum(x + b, 0) * c).sum()


def test_sums_in_loops_of_their_own_same_bits():
    """A float32 row of 32: the loss's total and the column sum each get a loop after the
    row's elementwise loop (which then vectorizes); the sums add the same float32 values
    in the same order, in float64: bit for bit the sequential float64 sums."""
    x, b, c = _relu_data(np.float32, rows=40, cols=32)
    x[4:8], c[4:8] = 1.5, 2.0 ** -20             # finite: a total to compare bit for bit
    fused = graphc.value_and_grad(_loss_and_layer, argnums=(0, 1), target="numba")
    with np.errstate(all="ignore"):
        value, (d_x, d_b) = fused(x, b, c)
        _, (w_x, _) = graphc.value_and_grad(_loss_and_layer, argnums=(0, 1))(x, b, c)
        terms = (np.maximum(x + b, np.float32(0)) * c).astype(np.float64)
    src = fused.source(x, b, c)
    check_golden("numba_sums_apart_f32.py", src)
    kernel = _kernel(src)
    assert "sum_acc[0] += mul_row[j]" in kernel and "d_b_acc[j] += d_add_out[i, j]" in kernel
    assert kernel.count("for j in range(32):") == 4      # elementwise, total, column sums, copy
    _same_bits(d_x, w_x)
    total = 0.0
    for t in terms.ravel():                 # row by row, in order, in float64
        total += t
    assert np.isfinite(total) and value == np.float32(total)
    assert np.array_equal(d_b, d_x.astype(np.float64).sum(axis=0).astype(np.float32),
                          equal_nan=True)


def _where_arms(x, a, b):
    return np.where(x > 0, a * 2, b + 1) * x + np.where(x < 1, np.sqrt(x), 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where_arms_named_before_the_select(dtype):
    """np.where's arithmetic arms are computed before the select (no branch, no masked
    loads); an arm that calls a function stays in its branch (sqrt of a negative x is
    never computed); the values are the NumPy target's, bit for bit."""
    rng = np.random.default_rng(3)
    x, a, b = (rng.standard_normal((40, 8)).astype(dtype) for _ in range(3))
    x[0] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 2.0, -1.0]
    a[1], b[1] = COTANGENTS.astype(dtype), COTANGENTS[::-1].astype(dtype)
    fused, plain = (graphc.compile(_where_arms, target=t) for t in ("numba", "numpy"))
    with np.errstate(all="ignore"):
        got, want = fused(x, a, b), plain(x, a, b)
    _same_bits(got, want)
    kernel = _kernel(fused.source(x, a, b))
    assert "if_true = a[i, j] * " in kernel and "if_false = b[i, j] + " in kernel
    assert re.search(r"np\.sqrt\(x\[i, j\]\)\)? if", kernel)


def _where_grad(x, a, c):
    return (np.where(x > 0, a, x * 2) * c).sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bool_masked_gradient_is_a_select(dtype):
    """where's gradient masks the cotangent with a bool: ``ct if mask else 0`` (no
    multiply by a bool, which numba computes in float64), exactly the NumPy target's
    values with infinite and nan cotangents where the mask is off."""
    rng = np.random.default_rng(4)
    x, a, c = (rng.standard_normal((16, 8)).astype(dtype) for _ in range(3))
    c[:2] = COTANGENTS.astype(dtype)
    (d_x, d_a), (w_x, w_a), src = _grads(_where_grad, x, a, c)
    _same_bits(d_x, w_x)
    _same_bits(d_a, w_a)
    kernel = _kernel(src)
    zero = "np.float32(0.0)" if dtype == np.float32 else "0.0"
    assert f"d_a = grad if gt else {zero}" in kernel and " * gt" not in kernel


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 vector IR")
def test_mask_and_column_sum_kernel_vectorizes():
    """The loop over the columns is vectorized: float32 products on vectors, no masked
    loads (the cotangent read unconditionally), no float64 arithmetic but the sums'."""
    rng = np.random.default_rng(2)
    x, c = (rng.standard_normal((32, 256)).astype(np.float32) for _ in range(2))
    b = rng.standard_normal(256).astype(np.float32)
    fused = graphc.grad(_relu_layer, argnums=(0, 1), target="numba")
    fused(x, b, c)
    entry = next(iter(fused._cache.values()))
    kernel = next(v for k, v in entry.fn.__globals__.items() if k.startswith("fused_"))
    ir = "\n".join(kernel.inspect_llvm().values())
    assert re.search(r"fmul <\d+ x float>", ir)
    assert "llvm.masked.load" not in ir
    assert not re.search(r"fmul <\d+ x double>", ir)


def test_goal_reads_the_paired_ratio():
    """benchmarks/goals.py: the bandwidth goal is the slowest kernel's paired ratio (each
    kernel timed next to np.copyto) when the run has it, else the ratio of the rates."""
    from benchmarks.goals import goals
    (value,) = [v for text, _, v, _ in goals() if text.startswith("MLP b65,536")]
    rows = {"np.copyto (read 1, write 1)": {"GB_per_s": 20.0, "copy_over_kernel": 1.0},
            "bias + ReLU in place": {"GB_per_s": 25.0, "copy_over_kernel": 0.8},
            "ReLU mask + column sum": {"GB_per_s": 19.0, "copy_over_kernel": 1.04},
            "the same in NumPy": {"GB_per_s": 10.0, "copy_over_kernel": 2.0}}
    assert value({"numba": {"bandwidth": rows}}) == 1.04
    old = {k: {"GB_per_s": v["GB_per_s"]} for k, v in rows.items()}
    assert value({"numba": {"bandwidth": old}}) == 20.0 / 19.0
