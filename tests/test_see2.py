"""Issue 19 leftovers: tracebacks of every entry point, ``render --grad``'s argnums,
adjoint names of reshaped arguments, values inside loop bodies."""
import os
import traceback

import numpy as np
import pytest

import graphc

GRAPHC_DIR = os.path.dirname(graphc.__file__) + os.sep


# --- 1. every entry point hides graphc's frames -------------------------------------------

def _user_error(x):
    return np.sum(np.dot(x, np.ones(4)))        # x has 3 elements: a ShapeError here


def _user_raise(x):
    raise ValueError("the user's own error")


X = np.ones(3)

ENTRY_POINTS = {
    "render": lambda fn, tmp: graphc.render(fn, X, path=tmp / "f.dot"),
    "render_backward": lambda fn, tmp: graphc.render(fn, X, path=tmp / "f.dot", backward=True),
    "render_inline": lambda fn, tmp: graphc.render(fn, X),
    "check": lambda fn, tmp: graphc.check(fn, X),
    "report": lambda fn, tmp: graphc.report(fn, X, path=tmp / "f.html"),
    "jvp": lambda fn, tmp: graphc.jvp(fn, (X,), (X,)),
    "jvp_compiled": lambda fn, tmp: graphc.jvp(fn)((X,), (X,)),
    "vjp": lambda fn, tmp: graphc.vjp(fn, X),
    "hvp": lambda fn, tmp: graphc.hvp(fn, (X,), (X,)),
    "hvp_compiled": lambda fn, tmp: graphc.hvp(fn)((X,), (X,)),
    "vmap": lambda fn, tmp: graphc.vmap(fn)(np.ones((2, 3))),
    "jacobian": lambda fn, tmp: graphc.jacobian(fn)(X),
    "jacfwd": lambda fn, tmp: graphc.jacfwd(fn)(X),
    "hessian": lambda fn, tmp: graphc.hessian(fn)(X),
    "grad": lambda fn, tmp: graphc.grad(fn)(X),
    "trace_values": lambda fn, tmp: graphc.trace(fn, X, values=True),
}


def _frames(error):
    return traceback.extract_tb(error.__traceback__)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("fn, kind", [(_user_error, graphc.ShapeError),
                                      (_user_raise, ValueError)])
def test_entry_point_traceback_shows_the_user_frames_only(entry, fn, kind, tmp_path,
                                                          monkeypatch):
    monkeypatch.delenv("GRAPHC_TRACEBACK", raising=False)
    with pytest.raises(kind) as info:
        ENTRY_POINTS[entry](fn, tmp_path)
    frames = _frames(info.value)
    assert not [f for f in frames if f.filename.startswith(GRAPHC_DIR)], frames
    assert frames[-1].filename == __file__ and frames[-1].name == fn.__name__
    assert [f.name for f in frames][:2] == [frames[0].name, "<lambda>"]   # the user's call
    assert any("GRAPHC_TRACEBACK=full" in n for n in info.value.__notes__)


@pytest.mark.parametrize("entry", ["render", "check", "report", "jvp", "vjp", "hvp",
                                   "jacobian"])
def test_entry_point_traceback_full_with_the_environment_variable(entry, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("GRAPHC_TRACEBACK", "full")
    with pytest.raises(graphc.ShapeError) as info:
        ENTRY_POINTS[entry](_user_error, tmp_path)
    frames = _frames(info.value)
    graphc_frames = [f for f in frames if f.filename.startswith(GRAPHC_DIR)]
    assert len(graphc_frames) >= 3
    assert "_user_error" in [f.name for f in frames]
    assert not any("GRAPHC_TRACEBACK=full" in n for n in getattr(info.value, "__notes__", []))


MISUSES = {
    "render_option": (lambda: graphc.render(_user_error, X, rankdir="XX"), graphc.OptionError),
    "render_keyword": (lambda: graphc.render(_user_error, X, dpi_=3), graphc.OptionError),
    "check_argnums": (lambda: graphc.check(_user_error, X, argnums=7), graphc.GradError),
    "jacobian_mode": (lambda: graphc.jacobian(_user_error, mode="bad"), graphc.OptionError),
    "jvp_tangent": (lambda: graphc.jvp(_user_error, (X,), (np.ones(2),)),
                    graphc.SignatureError),
    "vjp_cotangent": (lambda: graphc.vjp(lambda x: x * 2, X)[1](np.ones(2)),
                      graphc.SignatureError),
    "hvp_tangents": (lambda: graphc.hvp(_user_error, (X,)), graphc.SignatureError),
    "grad_argnums": (lambda: graphc.grad(_user_error, argnums="a"), graphc.GradError),
}


@pytest.mark.parametrize("name", sorted(MISUSES))
def test_misused_entry_point_traceback_is_the_users_call(name, monkeypatch):
    monkeypatch.delenv("GRAPHC_TRACEBACK", raising=False)
    call, kind = MISUSES[name]
    with pytest.raises(kind) as info:
        call()
    frames = _frames(info.value)
    assert not [f for f in frames if f.filename.startswith(GRAPHC_DIR)], frames
    assert frames[-1].filename == __file__


def test_check_still_checks_after_the_wrap():
    report = graphc.check(lambda w1, w2: w1 / w2, 1.5, 0.5, argnums=(0, 1))
    assert report.ok and [r.status for r in report.rows] == ["proved", "proved"]


# --- 2. `graphc render --grad` differentiates argument 0, as graphc.grad -----------------

from graphc.cli import main  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LECTURE = os.path.join(ROOT, "examples", "autodiff_trace.py") + ":f"


def _adjoint_names(text):
    import re
    return set(re.findall(r"\bd_w[12]\b", text))


def test_cli_render_grad_defaults_to_argnums_0(tmp_path, capsys):
    out = tmp_path / "f.dot"
    assert main(["render", LECTURE, "--grad", "-o", str(out)]) == 0
    text = out.read_text()
    assert "cluster_backward" in text
    assert _adjoint_names(text) == {"d_w1"}
    # the same drawing as graphc.render(f, ..., backward=True) (whose default is argnums=0)
    import importlib.util
    spec = importlib.util.spec_from_file_location("_see2_lecture", LECTURE.split(":")[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    api = graphc.render(module.f, 1.5, 0.5, path=tmp_path / "api.dot", backward=True)
    assert _adjoint_names(api.read_text()) == {"d_w1"}


@pytest.mark.parametrize("argnums, expected", [("1", {"d_w2"}), ("0,1", {"d_w1", "d_w2"}),
                                               ("0", {"d_w1"})])
def test_cli_render_grad_argnums(argnums, expected, tmp_path, capsys):
    out = tmp_path / "f.dot"
    assert main(["render", LECTURE, "--grad", "--argnums", argnums, "-o", str(out)]) == 0
    assert _adjoint_names(out.read_text()) == expected


def test_cli_render_argnums_out_of_range_is_a_usage_error(tmp_path, capsys):
    assert main(["render", LECTURE, "--grad", "--argnums", "5", "-o",
                 str(tmp_path / "f.dot")]) == 2
    assert "--argnums" in capsys.readouterr().err


def test_cli_render_help_and_synopsis_say_argnums_0(capsys):
    assert main(["render", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--argnums" in text and "default 0" in text
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "graphc report FILE.py:FUNC" in readme
    assert "every positional argument whose" not in readme


# --- 3. the gradient of a reshaped / cast / broadcast argument is d_<argument> -------------

import re  # noqa: E402

from _fd import fd_grad_args, rel_err  # noqa: E402

RNG = np.random.default_rng(19)
W3 = RNG.normal(size=(4, 3))
B3 = RNG.normal(size=3)
X24 = RNG.normal(size=(2, 4))


def dense_reshaped_bias(W, b, x):
    h = x @ W + b.reshape(1, 3)             # the bias reshaped, as nn.conv2d does
    return np.sum(np.tanh(h))


def cast_bias(b, x):
    return np.sum(np.tanh(x * b.astype(np.float32)))


def broadcast_bias(b, x):
    return np.sum(np.tanh(x + np.broadcast_to(b, (2, 3))))


def bias_used_twice(b, x):
    return np.sum(np.tanh(x + b.reshape(1, 3))) + np.sum(b ** 2)


def _defined(source):
    """The names the generated function assigns, in order."""
    return re.findall(r"^    (\w+) = ", source, flags=re.M)


def test_reshaped_bias_gradient_is_named_after_the_bias():
    df = graphc.grad(dense_reshaped_bias, argnums=(0, 1))
    src = df.source(W3, B3, X24)
    assert "d_b = " in src and "return d_W, d_b" in src
    assert not any(n.startswith("d_reshape") for n in _defined(src)), src
    got = df(W3, B3, X24)
    want = fd_grad_args(dense_reshaped_bias, (W3, B3, X24), (0, 1))
    assert rel_err(got[0], want[0]) < 1e-7 and rel_err(got[1], want[1]) < 1e-7


def test_reshaped_bias_in_the_trace_and_the_drawing(tmp_path):
    table = str(graphc.grad(dense_reshaped_bias, argnums=(0, 1)).trace(W3, B3, X24))
    # the trace keeps one adjoint per forward line: d_reshape pairs with `reshape = ...`
    # at its (1, 3) shape, and the bias's own gradient is d_b
    assert "reshape = b.reshape(1, 3)" in table and "d_reshape = " in table
    assert re.search(r"d_b = d_reshape\.reshape\(3\)", table), table
    dot = graphc.render(dense_reshaped_bias, W3, B3, X24, argnums=(0, 1), backward=True,
                        path=tmp_path / "f.dot").read_text()
    assert "d_b = " in dot and "d_reshape" not in dot


def test_cast_and_broadcast_argument_gradients_are_d_b():
    x32 = np.full(3, 0.5, np.float32)
    closed = (1 - np.tanh(x32 * B3.astype(np.float32)) ** 2) * x32      # d/db, in float32
    for fn, x, want in ((cast_bias, x32, closed),
                        (broadcast_bias, X24[:, :3],
                         fd_grad_args(broadcast_bias, (B3, X24[:, :3]), (0,))[0])):
        df = graphc.grad(fn)
        src = df.source(B3, x)
        assert "return d_b\n" in src, src
        assert rel_err(df(B3, x), want) < 1e-6


def test_an_argument_used_twice_keeps_the_reshape_adjoint_apart():
    # d(reshape) is only part of b's gradient here: it must not be called d_b
    df = graphc.grad(bias_used_twice)
    src = df.source(B3, np.ones((2, 3)))
    names = _defined(src)
    assert names.count("d_b") <= 1 and "d_b_1" not in names, src
    assert re.search(r"return d_b\b", src)
    want = fd_grad_args(bias_used_twice, (B3, np.ones((2, 3))), (0,))[0]
    assert rel_err(df(B3, np.ones((2, 3))), want) < 1e-7


def test_lenet_bias_gradients_are_named_after_the_biases(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("_see2_lenet",
                                                  os.path.join(ROOT, "examples", "lenet.py"))
    lenet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lenet)
    args, kwargs = lenet.loss.__graphc_example__
    src = graphc.grad(lenet.loss).source(*args, **kwargs)
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        assert f"'b': d_{layer}_b" in src
    dot = graphc.render(lenet.loss, *args, path=tmp_path / "l.dot", backward=True,
                        collapse=True, **kwargs).read_text()
    assert "d_conv1_b" in dot and "d_conv2_b" in dot and "d_reshape" not in dot


# --- 4. values inside loop bodies: the first step ----------------------------------------

XL = np.array([0.5, -1.0])
WL = np.array([1.5, 2.0])


def loop_fn(x, w):
    def body(i, h):
        z = h * w
        return np.tanh(z + x)
    h = graphc.fori_loop(0, 3, body, np.zeros(2))
    return np.sum(h)


def _value_of(text, statement):
    """The value printed beside the line that starts with ``statement`` (None: none)."""
    for line in text.splitlines():
        if line.strip().startswith(statement):
            return line.split("= ")[-1] if "#" in line and line.rstrip().count("= ") >= 2 \
                else None
    raise AssertionError(f"no line {statement!r} in\n{text}")


def test_loop_body_lines_show_the_first_step():
    text = str(graphc.trace(loop_fn, XL, WL, values=True))
    assert "# values in the loop body: its first step (t = 0)" in text
    # step 1 from h = 0: z = 0, add = x, h = tanh(x)
    assert _value_of(text, "z = h * w") == "[0, 0]"
    assert _value_of(text, "add = z + x") == "[0.5, -1]"
    h1 = np.tanh(XL)
    assert _value_of(text, "h = np.tanh(add)") == f"[{h1[0]:.4g}, {h1[1]:.4g}]"
    assert _value_of(text, "i = i + 1") == "1"
    # after the loop: the final value, as before
    h = np.zeros(2)
    for _ in range(3):
        h = np.tanh(h * WL + XL)
    assert _value_of(text, "sum_ = h.sum()") == str(np.float64(h.sum()))
    # the note comes right before the loop's own line
    lines = text.splitlines()
    k = next(i for i, s in enumerate(lines) if "values in the loop body" in s)
    assert lines[k + 1].strip().startswith("for t in range(3):")


def test_reversed_loop_of_the_backward_pass_shows_its_first_step_run():
    text = str(graphc.grad(loop_fn).trace(XL, WL, values=True))
    assert "its first step (t = 2)" in text          # the backward loop runs t = 2, 1, 0
    h = np.zeros(2)
    for _ in range(2):
        h = np.tanh(h * WL + XL)                      # the carry entering step t = 2
    mul = h * WL
    assert _value_of(text, "mul = h_tape[t_1] * w") == f"[{mul[0]:.4g}, {mul[1]:.4g}]"


def test_while_loop_body_values_and_a_loop_that_never_runs():
    def newton(a):
        def body(c):
            x, k = c
            return (x - (x * x - a) / (2 * x), k + 1)
        return graphc.while_loop(lambda c: c[1] < 3, body, (a, 0))[0]
    text = str(graphc.trace(newton, 2.0, values=True))
    assert "# values in the loop body: its first step\n" in text + "\n"
    assert _value_of(text, "div = sub / mul_1") == "0.5"       # (4 - 2) / 4
    assert _value_of(text, "x = x - div") == "1.5"

    def empty(x):
        return graphc.fori_loop(0, 0, lambda i, h: h * x, x)
    text = str(graphc.trace(empty, 2.0, values=True))
    assert "values in the loop body" not in text
    assert _value_of(text, "h = h * x") is None


def test_nested_loop_lines_show_no_misleading_value():
    def nested(x):
        def outer(i, h):
            return graphc.fori_loop(0, 2, lambda j, g: g * x, h) + 1.0
        return graphc.fori_loop(0, 2, outer, 1.0)
    text = str(graphc.trace(nested, 2.0, values=True))
    # `g = h` starts the inner loop (g is 1.0 there): the inner loop's result (4.0)
    # must not be printed beside it; the outer body's own line shows its first step
    assert _value_of(text, "g = h") is None
    assert _value_of(text, "h = g + 1.0") == "5.0"
    assert float(graphc.compile(nested)(2.0)) == 21.0          # (1 * 4 + 1) * 4 + 1
