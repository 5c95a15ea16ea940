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
