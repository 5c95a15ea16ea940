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
