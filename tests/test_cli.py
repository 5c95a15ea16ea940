"""The ``graphc`` command line (API.md section 7), run in-process and once as a subprocess."""
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import graphc
from graphc import cli, demo
from graphc.argnums import floating_argnums
from graphc.cli import main, parse_args_option
from functions import lecture_grad_closed_form
import _libm

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "autodiff_trace.py"
TARGET = f"{EXAMPLE}:f"
W = (1.5, 0.5)
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
try:
    import sklearn  # noqa: F401
    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False


def _import(path, name="_test_cli_module"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def user_file(tmp_path):
    """A user's file with functions that need --arg."""
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent("""\
        import numpy as np

        def layer(x, W, scale, n=2):
            h = x @ W
            for _ in range(n):
                h = np.tanh(h) * scale
            return h.sum()

        def loss(x, w):
            return np.sum(np.tanh(x * w) ** 2)

        def static_branch(x, n):
            if n > 1:          # a Python int is static: this branch runs at trace time
                return x * 2.0
            return x

        def branchy(x):
            if x > 0:
                return x
            return -x

        def rescaled(x):
            return (x / float(x.max())).sum()
        """))
    return path


@pytest.fixture
def quick_demo(monkeypatch):
    """The demo with a short CNN training: for tests of the demo's mechanics."""
    monkeypatch.setattr(demo, "DEMO_DIGITS_STEPS", 20)


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """A PATH without Graphviz's dot program."""
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None


# --- demo ------------------------------------------------------------------------------
@pytest.mark.slow
def test_demo_writes_files_and_agrees_with_closed_form(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # the trace uses the user's names, one line per op
    assert "z1 = w1 / w2" in text and "z6 = z4 * z5" in text
    # the gradient table, and the generated source with adjoint names
    assert "df/dw1" in text and "closed form" in text and "agree" in text
    assert "MISMATCH" not in text and "DIFFERS" not in text
    assert "def f_grad(w1, w2):" in text and "d_w1" in text
    # the SymPy proof, with both partial derivatives in closed form
    assert "graphc.check(f): OK" in text and text.count(" proved ") >= 2
    assert "df/dw1 = " in text and "df/dw2 = " in text
    # XOR: the linear unit's best is 75%, the hidden layer gets all 4 points
    assert "single linear unit, OR : accuracy 100%" in text
    assert "single linear unit, AND: accuracy 100%" in text
    assert "best any linear unit can do on XOR: 75%" in text
    assert "2-3-1 tanh network,   XOR: accuracy 100%" in text
    # the summary names the folder and every file written
    summary = text.split("Summary", 1)[1]
    assert str(out.resolve()) in summary
    names = ["f_grad.py", "autodiff_trace.py"]
    names += (["f_forward.svg", "f_forward.png", "f_backward.svg", "f_backward.png"] if HAVE_DOT
              else ["f_forward.dot", "f_backward.dot"])
    if HAVE_SKLEARN:
        names += (["lenet_backward.svg", "lenet_backward.png"] if HAVE_DOT
                  else ["lenet_backward.dot"])
        acc = float(text.split("test accuracy: ", 1)[1].split("%", 1)[0])
        assert acc >= 95.0, text
        assert "[##############################] step  300/300" in text
    for name in names:
        assert (out / name).is_file(), name
        assert str(out / name) in summary, name
    # ... and points at the lecture's other examples
    assert "the lecture's other examples" in summary
    for name in ("activations.py", "filters.py", "cost.py"):
        assert name in summary, name
    # the exported module stands alone and gives the closed-form gradient
    src = (out / "f_grad.py").read_text()
    imports = [ln for ln in src.splitlines() if ln.startswith(("import ", "from "))]
    assert imports == _libm.math_imports()    # math: Python-float arguments (tests/_libm.py)
    got = _import(out / "f_grad.py", "_demo_f_grad").f_grad(*W)
    np.testing.assert_allclose(got, lecture_grad_closed_form(*W), rtol=1e-12)


@pytest.mark.slow
@needs_dot
@pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn is not installed")
def test_demo_images_are_valid_svg_and_png(tmp_path, capsys, quick_demo):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    capsys.readouterr()
    for stem, labels in [("f_forward", ["w1", "z6"]), ("f_backward", ["d_w1", "d_w2", "backward"]),
                         ("lenet_backward", ["conv1", "pool2", "fc2"])]:
        texts = _svg_texts(out / f"{stem}.svg")
        for label in labels:
            assert any(label in t for t in texts), (stem, label)
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_demo_without_dot_writes_dot_files_and_says_how_to_install(tmp_path, capsys, quick_demo,
                                                                    no_dot):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "apt-get install graphviz" in text and "brew install graphviz" in text
    assert (out / "f_forward.dot").read_text().lstrip().startswith("digraph")
    assert (out / "f_backward.dot").is_file()
    assert not list(out.glob("*.svg")) and not list(out.glob("*.png"))


@pytest.mark.slow
def test_demo_without_sklearn_skips_the_cnn(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "_have_sklearn", lambda: False)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pip install scikit-learn" in text and "skipping" in text
    assert "test accuracy" not in text and not list(out.glob("lenet*"))
    assert "XOR: accuracy 100%" in text


@pytest.mark.slow
def test_demo_without_examples_skips_those_steps(tmp_path, capsys, monkeypatch, quick_demo):
    """An install without the example files still runs the rest of the tour."""
    monkeypatch.setattr(demo, "_examples_dir", lambda: None)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped: examples/logic_gates.py was not found" in text
    assert (out / "f_grad.py").exists()


def test_examples_dir_is_found_beside_the_package():
    assert demo._examples_dir() == ROOT / "examples"


@pytest.mark.slow
def test_demo_twice_into_the_same_folder(tmp_path, capsys, quick_demo):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    assert main(["demo", "--out", str(out)]) == 0


def test_demo_does_not_clobber_foreign_files(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "autodiff_trace.py").write_text("# mine\n")
    assert main(["demo", "--out", str(out)]) == 2
    assert "not written by graphc demo" in capsys.readouterr().err
    assert (out / "autodiff_trace.py").read_text() == "# mine\n"


@pytest.mark.slow
def test_demo_default_folder_is_graphc_demo(tmp_path, capsys, monkeypatch, quick_demo):
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    assert (tmp_path / "graphc-demo" / "f_grad.py").is_file()


# --- trace and source on the example ---------------------------------------------------
def test_trace_example_without_flags(capsys):
    assert main(["trace", TARGET]) == 0
    text = capsys.readouterr().out
    lines = text.strip().splitlines()
    assert lines[0] == "f(w1: f64[], w2: f64[]):"
    for expected in ("z1 = w1 / w2", "z2 = np.sin(", "z3 = np.exp(", "z5 = z2 + z4",
                     "z6 = z4 * z5"):
        assert expected in text
    assert "autodiff_trace.py:" in text
    assert lines[-1].strip() == "return z6"


def test_source_example_is_the_module_alone(capsys):
    assert main(["source", TARGET]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Generated by graphc")
    ns = {}
    exec(compile(text, "<source>", "exec"), ns)
    z1 = W[0] / W[1]
    z4 = 3 * z1 - np.exp(2 * W[1])
    assert ns["f"](*W) == pytest.approx(z4 * (np.sin(2 * np.pi * z1) + z4), rel=1e-12)


def test_source_grad_example(capsys):
    assert main(["source", TARGET, "--grad"]) == 0
    text = capsys.readouterr().out
    assert "def f_grad(w1, w2):" in text and "# grad of:" in text
    ns = {}
    exec(compile(text, "<source>", "exec"), ns)
    assert ns["f_grad"](*W) == pytest.approx(lecture_grad_closed_form(*W)[0], rel=1e-12)


def test_source_grad_argnums(capsys):
    assert main(["source", TARGET, "--grad", "--argnums", "0,1"]) == 0
    ns = {}
    exec(compile(capsys.readouterr().out, "<source>", "exec"), ns)
    np.testing.assert_allclose(ns["f_grad"](*W), lecture_grad_closed_form(*W), rtol=1e-12)


def test_source_output_file_runs(tmp_path, capsys):
    out = tmp_path / "sub" / "f_grad.py"
    assert main(["source", TARGET, "--grad", "--argnums", "0,1", "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    src = out.read_text()
    assert [ln for ln in src.splitlines() if ln.startswith(("import ", "from "))] == \
        _libm.math_imports()                                   # math: Python-float arguments
    got = _import(out, "_cli_f_grad").f_grad(*W)
    np.testing.assert_allclose(got, lecture_grad_closed_form(*W), rtol=1e-12)


def test_source_output_refuses_foreign_file(tmp_path, capsys):
    out = tmp_path / "mine.py"
    out.write_text("print('mine')\n")
    assert main(["source", TARGET, "-o", str(out)]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert out.read_text() == "print('mine')\n"


# --- render ----------------------------------------------------------------------------
def _svg_texts(path):
    """Every text element of an SVG file, which must parse as XML."""
    root = ET.parse(path).getroot()
    return ["".join(el.itertext()) for el in root.iter() if el.tag.endswith("}text")]


@needs_dot
def test_render_svg_has_the_node_labels(tmp_path, capsys):
    out = tmp_path / "f.svg"
    assert main(["render", TARGET, "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    texts = _svg_texts(out)
    for label in ("w1", "w2", "z1 = ÷", "z6 = ×", "f64[]"):
        assert any(label in t for t in texts), label
    assert not any("d_w1" in t for t in texts)          # forward only


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_render_png_and_pdf(tmp_path, capsys, suffix, magic):
    out = tmp_path / f"f{suffix}"
    assert main(["render", TARGET, "--grad", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


def test_render_dot_needs_no_dot_program(tmp_path, capsys, no_dot):
    out = tmp_path / "f.dot"
    assert main(["render", TARGET, "--grad", "-o", str(out)]) == 0
    text = out.read_text()
    assert text.lstrip().startswith("digraph") and "cluster_backward" in text
    for label in ("z1", "z6", "d_w1"):
        assert label in text
    assert "d_w2" not in text           # argnums=0 by default, as graphc.grad (issue 19)


def test_render_svg_without_dot_exits_1_with_the_install_hint(tmp_path, capsys, no_dot):
    assert main(["render", TARGET, "-o", str(tmp_path / "f.svg")]) == 1
    err = capsys.readouterr().err
    assert "dot" in err and "apt-get install graphviz" in err and "Traceback" not in err
    assert not (tmp_path / "f.svg").exists()


def test_render_grad_argnums(tmp_path, capsys):
    out = tmp_path / "f.dot"
    assert main(["render", TARGET, "--grad", "--argnums", "1", "-o", str(out)]) == 0
    text = out.read_text()
    assert "d_w2" in text and "d_w1" not in text


def test_render_collapse_draws_scopes_as_boxes(tmp_path, capsys):
    target = f"{ROOT / 'examples' / 'lenet.py'}:loss"
    out = tmp_path / "lenet.dot"
    assert main(["render", target, "--grad", "--collapse", "-o", str(out)]) == 0
    text = out.read_text()
    for scope in ("conv1", "pool1", "conv2", "pool2", "fc1", "fc2"):
        assert f"scope__{scope}" in text and f"scope__{scope}__bwd" in text
    assert "im2col" not in text                       # inside a box: not drawn


def test_render_collapse_without_scopes_says_so(tmp_path, capsys):
    assert main(["render", TARGET, "--collapse", "-o", str(tmp_path / "f.dot")]) == 0
    assert "nothing to collapse" in capsys.readouterr().err


def test_render_flops(tmp_path, capsys):
    out = tmp_path / "f.dot"
    assert main(["render", TARGET, "--flops", "-o", str(out)]) == 0
    assert "FLOPs" in out.read_text()


def test_render_with_args(user_file, tmp_path, capsys):
    out = tmp_path / "layer.dot"
    assert main(["render", f"{user_file}:layer", "--arg", "x=f32[2,3]", "--arg", "W=f32[3,4]",
                 "--arg", "scale=0.5", "--grad", "-o", str(out)]) == 0
    text = out.read_text()
    assert "f32[2,3]" in text and "d_x" in text
    assert "d_W" not in text            # argnums=0 by default, as graphc.grad (issue 19)


@pytest.mark.parametrize("argv, needle", [
    (["render", TARGET, "-o", "f.jpeg"], ".svg, .png, .pdf or .dot"),
    (["render", TARGET, "-o", "f"], ".svg, .png, .pdf or .dot"),
    (["render", TARGET, "--argnums", "1", "-o", "f.dot"], "--grad"),
    (["check", TARGET, "--argnums", "x"], "--argnums expects integers"),
])
def test_render_and_check_usage_errors_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_render_needs_output(capsys):
    assert main(["render", TARGET]) == 2
    assert "-o" in capsys.readouterr().err


# --- check -----------------------------------------------------------------------------
def test_check_lecture_example_exit_0(capsys):
    assert main(["check", TARGET, "--argnums", "0,1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("graphc.check(f): OK")
    rows = [ln.split() for ln in text.splitlines()[2:4]]
    assert [r[:2] for r in rows] == [["w1", "proved"], ["w2", "proved"]]
    assert "df/dw1 = " in text and "df/dw2 = " in text


def test_check_argnums(capsys):
    assert main(["check", TARGET, "--argnums", "1"]) == 0
    text = capsys.readouterr().out
    assert "df/dw2 = " in text and "df/dw1" not in text


def test_check_mismatch_exit_1(monkeypatch, capsys):
    """A failing report (graphc.check replaced in-process) gives exit status 1."""
    calls = []

    def fake_check(fn, *args, argnums=0, **kwargs):
        calls.append(argnums)
        return graphc.CheckReport("f", rows=[graphc.CheckRow("w1", "proved", 0.0, 1, 1),
                                             graphc.CheckRow("w2", "mismatch", 0.5, 1, 1)])
    monkeypatch.setattr(graphc, "check", fake_check)
    assert main(["check", TARGET]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert calls == [0]          # argument 0 by default, as graphc.check and graphc.grad


def test_check_default_argnums_are_the_floating_arguments(user_file, monkeypatch, capsys):
    seen = []

    def fake_check(fn, *args, argnums=0, **kwargs):
        seen.append(argnums)
        return graphc.CheckReport("f", rows=[graphc.CheckRow("x", "proved", 0.0, 1, 1)])
    monkeypatch.setattr(graphc, "check", fake_check)
    # argument 0 by default, as graphc.check and graphc.grad (not every floating argument)
    assert main(["check", f"{user_file}:layer", "--arg", "x=f32[2,3]", "--arg", "W=f32[3,4]",
                 "--arg", "scale=0.5", "--arg", "n=1"]) == 0
    assert seen[-1] == 0
    assert main(["check", f"{user_file}:loss", "--arg", "x=i64[4]", "--arg", "w=0.7",
                 "--argnums", "1"]) == 0
    assert seen[-1] == 1


def test_floating_argnums():
    spec = graphc.Spec((2, 3))
    args = (1.5, 2, np.ones(3), np.arange(3), {"w": np.ones(2), "b": 0.5},
            {"w": np.ones(2), "n": 3}, spec, graphc.Spec((2,), "int64"), True, np.float32(1.0), [], None)
    # a static int inside a pytree has no gradient (a GradError): {"w", "n": 3} does not count
    assert floating_argnums(args) == (0, 2, 4, 6, 9)


def test_check_real_user_function(user_file, capsys):
    assert main(["check", f"{user_file}:loss", "--arg", "x=f64[3]", "--arg", "w=0.7",
                 "--argnums", "0,1"]) == 0
    text = capsys.readouterr().out
    assert "OK" in text and "x " in text and "w " in text


def test_check_graphc_error_exit_1(user_file, capsys):
    # asking for the gradient of an integer argument is a GraphcError: exit 1, no traceback
    assert main(["check", f"{user_file}:loss", "--arg", "x=i64[4]", "--arg", "w=0.7",
                 "--argnums", "0"]) == 1
    err = capsys.readouterr().err
    assert "integer" in err and "Traceback" not in err


# --- --arg ------------------------------------------------------------------------------
def test_parse_arg_values():
    (x, a), (n, b), (lr, c), (e, d), (i, k), (t, flag) = parse_args_option(
        ["x=f32[2,3]", "n=3", "lr=0.1", "eps=1e-3", "idx=i64[5]", "training=False"])
    assert (x, n, lr, e, i, t) == ("x", "n", "lr", "eps", "idx", "training")
    assert isinstance(a, np.ndarray) and a.shape == (2, 3) and a.dtype == np.float32
    assert type(b) is int and b == 3
    assert type(c) is float and c == 0.1
    assert type(d) is float and d == 1e-3
    assert k.dtype == np.int64 and k.shape == (5,) and k.min() >= 0 and k.max() <= 9
    assert flag is False
    # a fixed seed: the same flags give the same values
    again = parse_args_option(["x=f32[2,3]"])[0][1]
    np.testing.assert_array_equal(a, again)


@pytest.mark.parametrize("spec, dtype, shape", [
    ("f16[4]", np.float16, (4,)), ("f64[]", np.float64, ()), ("i32[2,2]", np.int32, (2, 2)),
    ("bool[3]", np.bool_, (3,)), ("f32[64,1,28,28]", np.float32, (64, 1, 28, 28)),
])
def test_parse_array_dtypes(spec, dtype, shape):
    value = parse_args_option([f"x={spec}"])[0][1]
    assert value.dtype == dtype and value.shape == shape


def test_trace_with_args(user_file, capsys):
    rc = main(["trace", f"{user_file}:layer", "--arg", "x=f32[2,3]", "--arg", "W=f32[3,4]",
               "--arg", "scale=0.5", "--arg", "n=1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert text.startswith("layer(x: f32[2,3], W: f32[3,4]")
    assert text.count("np.tanh(") == 1          # n=1 is static: the loop ran once
    assert "model.py:" in text


def test_int_arg_is_static(user_file, capsys):
    assert main(["trace", f"{user_file}:static_branch", "--arg", "x=f64[3]",
                 "--arg", "n=3"]) == 0
    text = capsys.readouterr().out
    assert "n:" not in text.splitlines()[0]      # not a graph input
    assert "2.0" in text or "* 2" in text


def test_source_with_args_runs(user_file, tmp_path, capsys):
    out = tmp_path / "loss_grad.py"
    assert main(["source", f"{user_file}:loss", "--arg", "x=f64[4]", "--arg", "w=0.7",
                 "--grad", "-o", str(out)]) == 0
    loss_grad = _import(out, "_cli_loss_grad").loss_grad
    x = np.linspace(-1.0, 1.0, 4)
    want = 2 * np.tanh(x * 0.7) * (1 - np.tanh(x * 0.7) ** 2) * 0.7
    np.testing.assert_allclose(loss_grad(x, 0.7), want, rtol=1e-12)


def test_missing_args_exit_2(user_file, capsys):
    assert main(["trace", f"{user_file}:layer", "--arg", "x=f32[2,3]"]) == 2
    err = capsys.readouterr().err
    assert "W" in err and "scale" in err and "--arg" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, needle", [
    (["trace", "nofile.py:f"], "no such file"),
    # FILE.py alone names its one @graphc.example function; with two, name one
    (["trace", str(EXAMPLE.parent / "activations.py")], "name one"),
    (["trace", str(EXAMPLE)[:-3]], "FILE.py:FUNC"),
    (["trace", f"{EXAMPLE}:nope"], "no function 'nope'"),
    (["trace", TARGET, "--arg", "q=1.0"], "no parameter 'q'"),
    (["trace", TARGET, "--arg", "w1=q8[2]"], "unknown dtype"),
    (["trace", TARGET, "--arg", "w1=abc"], "cannot read"),
    (["trace", TARGET, "--arg", "w1"], "NAME=VALUE"),
    (["source", TARGET, "--argnums", "1"], "--grad"),
])
def test_usage_errors_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_argparse_errors_return_2(capsys):
    assert main(["bogus"]) == 2
    assert main([]) == 2
    assert main(["--help"]) == 0


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("demo", "trace", "source", "render", "check"):
        assert command in text
    for command in ("render", "check"):
        assert main([command, "--help"]) == 0
        assert "--argnums" in capsys.readouterr().out


def test_graphc_error_exit_1_without_traceback(user_file, capsys):
    # (an `if` on a value is a guard since issue 15: float() of a differentiated one cuts
    # the gradient)
    assert main(["trace", f"{user_file}:branchy", "--arg", "x=1.0"]) == 0
    capsys.readouterr()
    assert main(["source", f"{user_file}:rescaled", "--grad", "--arg", "x=f64[3]"]) == 1
    err = capsys.readouterr().err
    assert "model.py:" in err and "np.where" in err
    assert "Traceback" not in err


def test_arg_overrides_example(capsys):
    assert main(["trace", TARGET, "--arg", "w2=f32[3]"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("f(w1: f64[], w2: f32[3])")


# --- as a real process -------------------------------------------------------------------
@pytest.mark.slow
def test_subprocess_module_entry_point(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "graphc.cli", *args],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    r = run("source", TARGET, "--grad")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# Generated by graphc") and "def f_grad" in r.stdout
    r = run("demo")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "graphc-demo" / "f_grad.py").is_file()
    r = run("trace", f"{EXAMPLE}:f", "--arg", "nope=1")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_autodiff_trace_example_main(capsys):
    _import(EXAMPLE, "_example_main").main()
    text = capsys.readouterr().out
    assert "z6 = z4 * z5" in text and "def f_grad(w1, w2):" in text
    assert "154.319017" in text and "-531.258972" in text


def test_trace_cost_of_gradient(capsys):
    # The FLOP totals printed are graph.cost() of the traced gradient, and the
    # matmul share dominates an MLP, as the lecture's formula says.
    target = f"{ROOT / 'examples' / 'lenet.py'}:loss"
    assert main(["trace", target, "--grad", "--cost"]) == 0
    out = capsys.readouterr().out
    fn = _import(ROOT / "examples" / "lenet.py", "_lenet_for_cost").loss
    args, kwargs = cli.example_inputs(fn, {})
    c = graphc.trace(graphc.grad(fn), *args, **kwargs).cost()
    assert f"forward  {c.forward_flops:>15,} FLOPs" in out
    assert f"backward {c.backward_flops:>15,} FLOPs" in out
    assert "matmul" in out.split("# cost")[1].splitlines()[4]      # the largest op first
    assert "d_" in out.split("# cost")[0]                           # the backward pass is traced


def test_trace_argnums_needs_grad(capsys):
    assert main(["trace", f"{ROOT / 'examples' / 'lenet.py'}:loss", "--argnums", "0"]) == 2
