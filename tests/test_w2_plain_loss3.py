"""Issue 18, ``small4`` branch: W2 with the plain NumPy loss, third round.

* ``np.maximum`` / ``np.minimum`` against a scalar read a full constant of the result's
  shape (graphc/codegen_forms.py): NumPy's loop is vectorized only for two array
  operands.  The values are the same bit for bit (nan payloads and signs of zero
  included), and the plain form applies only where the array operand is C-ordered by
  construction, so a result's layout does not change either.
* The loss gradient's one-hot seed is added in place into the fresh term it is summed
  with (``d_z = d_sum * exp; d_z[np.arange(n), y] -= c``): the same bits (signs of zero
  aside, module docstring of graphc/codegen_forms.py), the same IndexError.
"""
from __future__ import annotations

import re
import threading
import warnings

import numpy as np
import pytest

import graphc
from benchmarks import workloads as W
from graphc import codegen, codegen_forms as full
from tests.test_w2_plain_loss2 import _by_hand, _w2


def _specials(dtype, shape, seed=0):
    """Random values mixed with ±0, ±inf, nans of several payloads and signs, subnormals."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(dtype)
    bits = {np.float32: ([0x7FC00001, 0xFFC00123, 0x7F800001], np.uint32),
            np.float64: ([0x7FF8000000000001, 0xFFF8000000000123], np.uint64)}[dtype]
    nans = np.array(bits[0], bits[1]).view(dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    pool = np.concatenate([np.array([0.0, -0.0, np.inf, -np.inf, 1.0, -1.0, tiny, -tiny], dtype), nans])
    mask = rng.random(shape) < 0.3
    x[mask] = rng.choice(pool, size=int(mask.sum()))
    return x


def _scalar_forms(monkeypatch):
    """Compile as before this branch: every maximum against the scalar, the seed apart."""
    monkeypatch.setattr(full, "FULL_BYTES", 1 << 62)
    monkeypatch.setattr(codegen, "seed_adds", lambda em, items: items)


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --- the forms -------------------------------------------------------------------------
def test_w2_relus_read_zero_arrays():
    p, x, y = _w2()
    src = graphc.value_and_grad(W.mlp_loss_np).source(p, x, y)
    assert "zeros_128x256 = np.zeros((128, 256), dtype=np.float32)" in src
    assert "h1 = np.maximum(zeros_128x256, add)" in src
    assert "h2 = np.maximum(zeros_128x128, add_1)" in src
    src_nn = graphc.value_and_grad(W.mlp_loss_nn).source(p, x, y)
    assert "h1 = np.maximum(x @ W1 + b1, zeros_128x256)" in src_nn     # graphc.nn.relu too


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op, c", [("maximum", 0), ("maximum", 0.0), ("maximum", -0.0),
                                   ("minimum", 0.0), ("maximum", 0.5), ("minimum", 6.0),
                                   ("maximum", -1)])
@pytest.mark.parametrize("first", [True, False])
def test_full_operand_gives_the_scalar_forms_bits(dtype, op, c, first):
    """A product's result (C-ordered) against a scalar, both argument orders, at a size
    with SIMD bodies and remainders: the same bits as NumPy's own scalar form, value and
    gradient, and as the code without the constant."""
    fn = getattr(np, op)
    rng = np.random.default_rng(3)
    a, w = rng.normal(size=(67, 9)).astype(dtype), rng.normal(size=(9, 131)).astype(dtype)

    def f(a, w):
        m = a @ w
        return fn(c, m) if first else fn(m, c)

    def loss(a, w):
        return (f(a, w) * 1.5).sum()

    cf = graphc.compile(f)
    assert re.search(r"(zeros|full)_67x131", cf.source(a, w))
    want = f(a, w)                                    # NumPy, eager
    assert _same_bits(cf(a, w), want)
    # with the specials as the product (w = identity: a @ I == a exactly, nans included)
    s = _specials(dtype, (67, 131))
    eye = np.eye(131, dtype=dtype)
    with np.errstate(invalid="ignore"):
        assert _same_bits(cf(s, eye), f(s, eye))
    vg = graphc.value_and_grad(loss, argnums=(0, 1))
    v1, g1 = vg(a, w)
    with pytest.MonkeyPatch.context() as m:
        _scalar_forms(m)
        old = graphc.value_and_grad(loss, argnums=(0, 1))
        assert not re.search(r"(zeros|full)_67x131", old.source(a, w))
        v0, g0 = old(a, w)
    assert _same_bits(v1, v0) and all(_same_bits(x1, x0) for x1, x0 in zip(g1, g0))


def test_layout_follows_numpy():
    """An operand that may not be C-ordered (an argument, a transposed view, an
    elementwise result of one) keeps the scalar: NumPy lays the result out like it."""
    rng = np.random.default_rng(0)
    x = np.asfortranarray(rng.normal(size=(128, 64)).astype(np.float32))
    w = rng.normal(size=(64, 64)).astype(np.float32)
    cases = {"argument": (lambda x, w: np.maximum(0, x), False),
             "transposed": (lambda x, w: np.maximum(0, x.T * 2.0), False),
             "product": (lambda x, w: np.maximum(0, x @ w), True),
             "product+bias": (lambda x, w: np.maximum(x @ w + w[0], 0.0), True),
             "reshape": (lambda x, w: np.maximum((x @ w).reshape(64, 128), 0.0), True)}
    for name, (f, takes) in cases.items():
        cf = graphc.compile(f)
        assert ("zeros_" in cf.source(x, w)) == takes, name
        got, want = cf(x, w), f(x, w)
        assert _same_bits(got, want), name
        assert got.strides == want.strides, name


def test_what_keeps_the_scalar():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 64)).astype(np.float32)
    w = rng.normal(size=(64, 64)).astype(np.float32)
    # 0.1 as the float32 NumPy rounds it to in the ufunc
    f = graphc.compile(lambda a, w: np.maximum(a @ w, 0.1))
    assert "full_64x64 = np.full((64, 64), 0.10000000149011612, dtype=np.float32)" in f.source(a, w)
    assert _same_bits(f(a, w), np.maximum(a @ w, 0.1))
    # small (under FULL_BYTES): as before
    small = graphc.compile(lambda a, w: np.maximum(a @ w, 0.0)).source(a[:8, :8], w[:8, :8])
    assert "zeros_" not in small
    # integers: no float operand
    ia = np.arange(64 * 64).reshape(64, 64)
    assert "zeros_" not in graphc.compile(lambda a: np.maximum(a * 2, 0)).source(ia)
    # a symbolic batch size: one module for every size, no constant of one shape
    spec = graphc.Spec(("n", 64), np.float32)
    sym = graphc.value_and_grad(lambda a, w: np.maximum(0, a @ w).sum()).source(spec, w)
    assert "zeros_" not in sym and "np.maximum(0, " in sym
    # the other targets write what they did
    assert "zeros_" not in graphc.compile(lambda a, w: np.maximum(a @ w, 0.0),
                                          target="array-api").source(a, w)


def test_threads_share_the_constant():
    p, x, y = _w2()
    vg = graphc.value_and_grad(W.mlp_loss_np)
    want = vg(p, x, y)
    out, errors = [], []

    def work():
        try:
            for _ in range(20):
                out.append(vg(p, x, y))
        except Exception as e:       # pragma: no cover - reported below
            errors.append(e)
    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(out) == 80
    for loss, g in out:
        assert _same_bits(loss, want[0]) and all(_same_bits(g[k], want[1][k]) for k in g)


# --- W2 as a whole ------------------------------------------------------------------------
@pytest.mark.parametrize("loss_fn", [W.mlp_loss_np, W.mlp_loss_nn])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_w2_same_bits_as_before(loss_fn, dtype, monkeypatch):
    p, x, y = _w2(dtype)
    loss, g = graphc.value_and_grad(loss_fn)(p, x, y)
    _scalar_forms(monkeypatch)
    loss0, g0 = graphc.value_and_grad(loss_fn)(p, x, y)
    assert _same_bits(loss, loss0)
    for k in W.MLP_KEYS:
        assert _same_bits(g[k], g0[k]), k


@pytest.mark.parametrize("layer", ["first", "second"])
def test_w2_ties_and_nans_keep_the_exact_rule(layer):
    p, x, y = _w2(np.float64)
    if layer == "first":
        p["b1"][:] = 0.0
        x[3] = 0.0
    else:
        p["W2"][:, 5] = 0.0
        p["b2"][5] = 0.0
    vg = graphc.value_and_grad(W.mlp_loss_np)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, g = vg(p, x, y)
    want_loss, want = _by_hand(p, x, y)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    for k in W.MLP_KEYS:
        np.testing.assert_allclose(g[k], want[k], rtol=1e-10, atol=1e-15)
    x[5, 7] = np.nan                 # a nan input: nan where it reaches, as NumPy
    loss, g = vg(p, x, y)
    assert np.isnan(loss) and np.isnan(g["W1"][7]).all()


def test_w2_against_pytorch():
    torch = pytest.importorskip("torch")
    p, x, y = _w2()
    loss, g = graphc.value_and_grad(W.mlp_loss_np)(p, x, y)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tl = W._torch_mlp(tp, torch.tensor(x), torch.tensor(y))
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-5)
    for k in W.MLP_KEYS:
        np.testing.assert_allclose(g[k], tp[k].grad.numpy(), rtol=1e-4, atol=1e-6)


# --- the one-hot seed added in place --------------------------------------------------------
def test_w2_seed_is_added_in_place():
    p, x, y = _w2()
    src = graphc.value_and_grad(W.mlp_loss_np).source(p, x, y)
    assert "    d_z = d_sum * exp\n    d_z[np.arange(128), y] -= 0.0078125 " in src
    assert "d_logp" not in src


@pytest.mark.parametrize("labels", ["in range", "negative"])
def test_w2_labels_as_before(labels, monkeypatch):
    p, x, y = _w2()
    if labels == "negative":
        y = y - 10                   # NumPy wraps -10..-1 to 0..9, in the loss and the seed
    loss, g = graphc.value_and_grad(W.mlp_loss_np)(p, x, y)
    _scalar_forms(monkeypatch)
    loss0, g0 = graphc.value_and_grad(W.mlp_loss_np)(p, x, y)
    assert _same_bits(loss, loss0) and all(_same_bits(g[k], g0[k]) for k in W.MLP_KEYS)


def test_w2_out_of_range_label_raises():
    p, x, y = _w2()
    vg = graphc.value_and_grad(W.mlp_loss_np)
    vg(p, x, y)
    y = y.copy()
    y[7] = 10
    with pytest.raises(IndexError):
        vg(p, x, y)


@pytest.mark.parametrize("rows", [[0, 1, 2, 3], [0, 1, 1, 3]], ids=["arange", "repeated"])
def test_seed_of_a_gather(rows, monkeypatch):
    """d/dx (x[rows, cols].sum() + sin(x).sum()): the scatter of ones into the cosine in
    place when no element is indexed twice (rows = np.arange); np.add.at into zeros, as
    before, when one may be."""
    cols = np.array([2, 0, 0, 1])
    r = np.arange(4) if rows == [0, 1, 2, 3] else np.array(rows)

    def f(x, cols):
        rr = np.arange(4) if rows == [0, 1, 2, 3] else r        # (a constant arange)
        return x[rr, cols].sum() + np.sin(x).sum()
    x = np.linspace(-2.0, 2.0, 12).reshape(4, 3)
    gf = graphc.grad(f)
    src = gf.source(x, cols)
    got = gf(x, cols)
    want = np.cos(x)
    np.add.at(want, (r, cols), 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    with pytest.raises(IndexError):
        gf(x, np.array([2, 0, 3, 1]))
    _scalar_forms(monkeypatch)
    assert _same_bits(got, graphc.grad(f)(x, cols))
    if rows == [0, 1, 2, 3]:
        assert "np.add.at" not in src and "np.zeros" not in src
        assert "d_x[np.arange(4), cols] += 1.0" in src
    else:
        assert "np.add.at(" in src and "np.zeros" in src


def test_numpy_maximum_against_an_array_is_the_scalar_form():
    """What the full operand relies on, checked on this NumPy: its vectorized array-array
    loop and its scalar loop give the same bits, at every length and alignment the SIMD
    bodies and remainders see (so a NumPy that changes this fails here first)."""
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        pool = _specials(dtype, (64,), seed=2)
        for n in list(range(1, 40)) + [63, 64, 65, 127, 129, 1000]:
            for off in range(3):
                a = rng.choice(pool, size=n + off).astype(dtype)[off:]
                for c in (0, 0.0, -0.0, 0.5, -1.0):
                    full_c = np.full(a.shape, c, dtype)
                    for f in (np.maximum, np.minimum):
                        assert _same_bits(f(c, a), f(full_c, a)), (dtype, n, off, c, f)
                        assert _same_bits(f(a, c), f(a, full_c)), (dtype, n, off, c, f)
