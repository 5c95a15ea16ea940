"""Max pooling's gradient with the tie check (graphc/codegen_pool_check.py): the cheap
``x == max`` mask when no window ties, the exact first-maximum rule otherwise.

Every value must be bit for bit what the exact rule gave before the check (the code
generated with the check switched off), and the gradient must match PyTorch's
``max_pool2d`` (which also gives a tie to the first maximum) wherever no nan is involved.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import codegen_pool_check, codegen_workspace, nn

F32 = np.float32


def _conv_relu_pool(p, x):
    h = nn.relu(nn.conv2d(x, p["w"], p["b"], padding=1))
    return (nn.max_pool2d(h, 2) * p["v"]).sum()


def _relu_pool(k):
    """ReLU then pool directly on the input (easy to plant ties, zeros, inf and nan)."""
    def relu_pool(p, x):
        return (nn.max_pool2d(nn.relu(x * p["s"]), k) * p["v"]).sum()
    return relu_pool


def _pool_only(k):
    def pool_only(p, x):
        return (nn.max_pool2d(x * p["s"], k) * p["v"]).sum()
    return pool_only


def _both(fn, argnums=(0, 1)):
    """(new, old): value_and_grad of ``fn`` with the tie check, and without it."""
    new = graphc.value_and_grad(fn, argnums=argnums)
    old = graphc.value_and_grad(fn, argnums=argnums)
    return new, old


def _old_call(old, monkeypatch, *args):
    with monkeypatch.context() as m:
        m.setattr(codegen_workspace, "pool_check", lambda em, items: None)
        return old(*args)


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes(), (a, b)


def _assert_same(new_out, old_out):
    (v1, g1), (v0, g0) = new_out, old_out
    _same_bits(v1, v0)
    for a, b in zip(g1, g0):
        if isinstance(a, dict):
            for k in a:
                _same_bits(a[k], b[k])
        else:
            _same_bits(a, b)


def _planted(rng, shape, k, ties=True):
    """An image with ties at positive maxima (``ties``), zero (dead ReLU) windows, ties
    at negative maxima, and random windows."""
    x = rng.normal(size=shape).astype(F32)
    n, c, h, w = shape
    for i in range(0, h - k + 1, k):
        for j in range(0, w - k + 1, k):
            kind = rng.integers(0 if ties else 1, 5)
            win = x[:, :, i:i + k, j:j + k]
            if kind == 0:                       # a tie at a positive maximum
                win[..., rng.integers(0, k), rng.integers(0, k)] = 2.5
                win[..., rng.integers(0, k), rng.integers(0, k)] = 2.5
                win[..., 0, 0] = np.minimum(win[..., 0, 0], 2.5)
            elif kind == 1:                     # a dead window
                win[...] = -np.abs(win) - 0.1
            elif kind == 2:                     # a tie at a negative maximum
                win[...] = -np.abs(win) - 3.0
                win[..., 0, k - 1] = win[..., k - 1, 0] = -1.0
    return x


SPECIALS = {
    "none": None,
    "nan": np.nan,
    "inf": np.inf,
    "-inf": -np.inf,
}


@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("special", list(SPECIALS))
@pytest.mark.parametrize("where", ["x", "v"])
@pytest.mark.parametrize("fn", [_relu_pool, _pool_only])
def test_bit_for_bit_as_the_exact_rule(monkeypatch, fn, where, special, kernel):
    rng = np.random.default_rng(hash((fn.__name__, where, special, kernel)) % 2**32)
    x = _planted(rng, (3, 2, 4 * kernel + 1, 3 * kernel), kernel)   # cropped rows too
    v = rng.normal(size=(3, 2, 4, 3)).astype(F32)
    v[0, 0, 0, 0] = -v[0, 0, 0, 0] if v[0, 0, 0, 0] > 0 else v[0, 0, 0, 0]
    if special != "none":
        (x if where == "x" else v)[1, 1, 2, 1] = SPECIALS[special]
    p = {"s": F32(1.0), "v": v}
    new, old = _both(fn(kernel))
    for s in (1.0, -1.0, 0.0):                  # also all-zero windows (a ReLU of 0)
        p["s"] = F32(s)
        with np.errstate(invalid="ignore"):
            _assert_same(new(p, x), _old_call(old, monkeypatch, p, x))


def _exact_rule_ran(compiled, *args):
    """Did the generated code (``.source``) run its exact first-maximum lines?"""
    import sys
    src = compiled.source(*args)
    ns: dict = {}
    exec(compile(src, "<pool3>", "exec"), ns)
    fn = ns[compiled.export_name()]
    lines = src.splitlines()
    ran = set()

    def local(frame, event, arg):
        if event == "line":
            ran.add(frame.f_lineno)
        return local
    sys.settrace(lambda frame, event, arg: local if frame.f_code is fn.__code__ else None)
    try:
        with np.errstate(invalid="ignore"):
            fn(*args)
    finally:
        sys.settrace(None)
    return any("np.greater(" in lines[n - 1] for n in ran)


@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("fn", [_relu_pool, _pool_only])
def test_which_rule_runs(fn, kernel):
    """The cheap mask when no window ties (dead ReLU windows included), the exact rule
    for a tie at a positive maximum, a nan, or an inf cotangent after a ReLU."""
    rng = np.random.default_rng(5)
    x = _planted(rng, (3, 2, 4 * kernel + 1, 3 * kernel), kernel, ties=False)
    p = {"s": F32(1.0), "v": rng.normal(size=(3, 2, 4, 3)).astype(F32)}
    f = graphc.value_and_grad(fn(kernel), argnums=(0, 1))
    # without a ReLU the planted negative ties are ties; after one they are dead windows
    assert _exact_rule_ran(f, p, x) == (fn is _pool_only)
    x = rng.normal(size=x.shape).astype(F32)            # (no ties)
    assert not _exact_rule_ran(f, p, x)
    assert not _exact_rule_ran(f, p, -np.abs(x)) or fn is _pool_only   # all dead
    tie = x.copy()
    tie[1, 0, 0, 0] = tie[1, 0, 1, 1] = 4.0
    assert _exact_rule_ran(f, p, tie)
    nan = x.copy()
    nan[0, 1, 2, 2] = np.nan
    assert _exact_rule_ran(f, p, nan)
    if fn is _relu_pool:
        p["v"][0, 0, 0, 0] = np.inf
        assert _exact_rule_ran(f, p, x)


def test_the_check_is_in_the_generated_code(monkeypatch):
    rng = np.random.default_rng(0)
    p = {"w": rng.normal(size=(4, 2, 3, 3)).astype(F32), "b": np.zeros(4, F32),
         "v": rng.normal(size=(5, 4, 6, 6)).astype(F32)}
    x = rng.normal(size=(5, 2, 12, 12)).astype(F32)
    # (the ReLU before the pool stays where it was written: tests/test_pool_relu.py
    # checks the form where it runs after the pool)
    monkeypatch.setattr(codegen_pool_check, "POOL_RELU", False)
    src = graphc.value_and_grad(_conv_relu_pool).source(p, x)
    assert "np.count_nonzero(max_pool_mask) != 720 + 3 * (720 - np.count_nonzero(_pos))" in src
    assert "np.greater(" in src.split("np.count_nonzero(max_pool_mask)")[1]   # the exact rule after
    src = graphc.value_and_grad(_pool_only(2)).source({"s": F32(1), "v": p["v"][:, :2]}, x)
    assert "if np.isnan(pool.max()) or np.count_nonzero(max_pool_mask) != 360:" in src


def _torch_grads(fn_name, p, x, kernel):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tx = torch.tensor(x, requires_grad=True)
    tv = torch.tensor(p["v"], requires_grad=True)
    h = tx * float(p["s"])
    if fn_name == "_relu_pool":
        h = torch.relu(h)
    out = (F.max_pool2d(h, kernel) * tv).sum()
    out.backward()
    return tx.grad.numpy(), tv.grad.numpy()


@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("special", ["none", "inf", "-inf"])
@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("fn", [_relu_pool, _pool_only])
def test_against_torch(fn, ties, special, kernel):
    """Ties at positive and negative maxima, dead windows, ±inf: the first maximum."""
    rng = np.random.default_rng(kernel)
    x = _planted(rng, (3, 2, 4 * kernel, 3 * kernel), kernel, ties)
    if special != "none":
        x[1, 1, 2, 1] = SPECIALS[special]
    v = rng.normal(size=(3, 2, 4, 3)).astype(F32)
    p = {"s": F32(1.0), "v": v}
    _, (gp, gx) = graphc.value_and_grad(fn(kernel), argnums=(0, 1))(p, x)
    tgx, tgv = _torch_grads(fn.__name__, p, x, kernel)
    np.testing.assert_array_equal(gx, tgx)
    np.testing.assert_array_equal(gp["v"], tgv)


def test_lenet_at_batch_16_as_before(monkeypatch):
    """The benchmark's LeNet (conv, ReLU, pool twice): the same bits as the exact rule,
    on random data (the cheap path) and with planted ties at a positive maximum."""
    from benchmarks import convnets as C
    rng = np.random.default_rng(1)
    p = C.net_params("lenet-pad", rng)
    x, y = C.net_data("lenet-pad", 16, rng)
    new, old = _both(C.make_graphc_loss("lenet-pad"), argnums=0)
    _assert_same(new(p, x, y), _old_call(old, monkeypatch, p, x, y))
    x2 = x.copy()
    x2[:, :, 10:14, 10:14] = 3.0                # a flat patch: ties after conv1 + ReLU
    _assert_same(new(p, x2, y), _old_call(old, monkeypatch, p, x2, y))
    x2[0, 0, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):
        _assert_same(new(p, x2, y), _old_call(old, monkeypatch, p, x2, y))


# --- the entry check of exported code: an array's text cached per (dtype, shape) ---------
def _old_sig(x):
    """The entry check's text of an array before the cache (graphc/entry_checks.py)."""
    return f"{x.dtype.name}[{','.join([str(d) for d in x.shape])}]"


def _exported(fn, *args):
    compiled = graphc.value_and_grad(fn, argnums=0)
    ns: dict = {}
    exec(compile(compiled.source(*args), "<pool3-entry>", "exec"), ns)
    return ns[compiled.export_name()], ns


def test_entry_check_text_as_before():
    def f(p, x):
        return (p["w"] * x).sum()
    p = {"w": np.ones(3, F32)}
    fn, ns = _exported(f, p, np.ones(3, F32))
    sig = ns["_sig"]
    values = [np.ones((2, 3), F32), np.ones((2, 3), F32), np.ones((2, 3), ">f4"),
              np.ones(3, np.float64), np.ones((), F32), np.ones((0, 4), np.int64),
              np.ma.masked_array(np.ones(3, F32)), np.float32(1.0), np.int64(3),
              np.ones((2, 2), "U3"), np.ones(2, [("a", F32), ("b", np.int8)])]
    for _ in range(2):                  # filled, then read from the cache
        for v in values:
            assert sig(v) == _old_sig(v)
        assert sig({"a": values[0], "b": [values[3], (1.0, None, "s")]}) == {
            "a": "float32[2,3]", "b": ["float64[3]", ("float", None, "'s'")]}


def test_entry_check_refuses_after_the_cache_is_filled():
    def f(p, x):
        return (p["w"] @ x).sum()
    p = {"w": np.ones((2, 3), F32)}
    x = np.ones(3, F32)
    fn, ns = _exported(f, p, x)
    value, grads = fn(p, x)
    assert value == 6.0 and grads["w"].shape == (2, 3)
    fn(p, x)                            # (cached texts now)
    for bad_p, bad_x in [({"w": np.ones((3, 2), F32)}, x), (p, np.ones(3, np.float64)),
                         ({"w": np.ones((2, 3), np.float64)}, x), ({"v": p["w"]}, x),
                         ({"w": p["w"], "b": x}, x), (p, np.ones((3, 1), F32)),
                         ([p["w"]], x), (p, 3.0)]:
        with pytest.raises(ValueError, match="this code was generated for"):
            fn(bad_p, bad_x)
    assert len(ns["_SIGS"]) <= 256


def test_one_module_for_every_batch_size():
    """A named batch dimension: the window count is written in terms of it."""
    rng = np.random.default_rng(3)
    p = {"w": rng.normal(size=(4, 2, 3, 3)).astype(F32), "b": np.zeros(4, F32)}

    def f(p, x, v):
        h = nn.relu(nn.conv2d(x, p["w"], p["b"], padding=1))
        return (nn.max_pool2d(h, 2) * v).sum()
    vg = graphc.value_and_grad(f)
    src = vg.source(p, graphc.Spec(("n", 2, 12, 12), F32), graphc.Spec(("n", 4, 6, 6), F32))
    # (the ReLU runs after the pool: a zero window matches 0 or 4 times, tests/test_pool_relu.py)
    assert ("np.count_nonzero(max_pool_mask) != _zero_ties_pool * (n * 144) + (1 - _zero_ties_pool)"
            " * np.count_nonzero(_pos)") in src
    ns: dict = {}
    exec(compile(src, "<pool3-spec>", "exec"), ns)
    fn = ns[vg.export_name()]
    for n in (3, 5):
        x = rng.normal(size=(n, 2, 12, 12)).astype(F32)
        x[0, :, 4:8, 4:8] = 2.0                 # a flat patch: ties after the ReLU
        v = rng.normal(size=(n, 4, 6, 6)).astype(F32)
        (a, ga), (b, gb) = fn(p, x, v), vg(p, x, v)
        _same_bits(a, b)
        for k in p:
            _same_bits(ga[k], gb[k])


@pytest.mark.parametrize("kernel", [(1, 2), (2, 1), (2, 3)])
@pytest.mark.parametrize("fn", [_relu_pool, _pool_only])
def test_rectangular_windows(monkeypatch, fn, kernel):
    """Two positions (one refinement line) and 2x3 windows over a cropped image."""
    kh, kw = kernel
    rng = np.random.default_rng(kh * 10 + kw)
    x = rng.normal(size=(2, 3, 5 * kh - 1, 4 * kw - 1)).astype(F32)   # cropped if k > 1
    x[0, 0, :kh, :kw] = 1.5                     # a tie at a positive maximum
    x[1, 2, :kh, kw:2 * kw] = -0.5              # a dead window, a tie at a negative one
    p = {"s": F32(1.0), "v": rng.normal(size=(2, 3, 4, 3)).astype(F32)}
    new, old = _both(fn(kernel))
    for data in (x, rng.normal(size=x.shape).astype(F32)):
        _assert_same(new(p, data), _old_call(old, monkeypatch, p, data))
    _, (gp, gx) = new(p, x)
    tgx, tgv = _torch_grads(fn.__name__, p, x, kernel)
    np.testing.assert_array_equal(gx, tgx)
    np.testing.assert_array_equal(gp["v"], tgv)
