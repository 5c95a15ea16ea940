"""graphc.report and `graphc report` (API.md section 11): one self-contained HTML page with
linked views; checked here as text (tests/test_report_browser.py clicks it in Chromium)."""
import json
import pathlib
import re
import shutil
import sys

import numpy as np
import pytest

import graphc
from graphc.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import autodiff_trace  # noqa: E402

report_module = sys.modules["graphc.report"]


@pytest.fixture(scope="module")
def lecture_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "f.html"
    out = graphc.report(autodiff_trace.f, 1.5, 0.5, argnums=(0, 1), path=path)
    assert out == path
    return path.read_text()


def _data(text):
    raw = re.search(r'<script type="application/json" id="graphc-data">(.*?)</script>', text,
                    re.S).group(1)
    return json.loads(raw.replace("<\\/", "</"))


def test_page_is_self_contained(lecture_page):
    assert not re.search(r"https?://", lecture_page)
    assert not re.search(r'\b(src|href)\s*=\s*"(?!#)', lecture_page)
    assert "@import" not in lecture_page and "url(" not in lecture_page
    assert lecture_page.startswith("<!DOCTYPE html>") and lecture_page.count("<script") == 2


def test_page_has_every_view(lecture_page):
    for section in ('id="drawing"', 'id="trace"', 'id="code"', 'id="proof"', 'id="cost"'):
        assert section in lecture_page
    if shutil.which("dot"):
        assert "<svg" in lecture_page and 'id="v4"' in lecture_page
    assert "def f_value_and_grad(w1, w2):" in lecture_page      # the generated code
    assert "Backward trace: adjoints" in lecture_page
    assert 'class="ok">OK' in lecture_page and "proved" in lecture_page   # graphc.check
    assert "FLOPs" in lecture_page


def test_trace_rows_hold_values_and_adjoints(lecture_page):
    """The lecture's table: z1 = 3, z6 = 39.46; d_w1, d_w2 against the closed form."""
    from functions import lecture_grad_closed_form
    rows = dict(re.findall(r'<td class="code">([a-z_0-9]+) = [^<]*</td><td>f64\[\]</td>'
                           r'<td class="code">([^<]*)</td>', lecture_page))
    assert float(rows["z1"]) == 3.0 and abs(float(rows["z6"]) - 39.46) < 1e-3
    d_w1, d_w2 = lecture_grad_closed_form(1.5, 0.5)
    assert abs(float(rows["d_w1"]) - d_w1) < 1e-3 * abs(d_w1)
    assert abs(float(rows["d_w2"]) - d_w2) < 1e-3 * abs(d_w2)


def test_views_are_linked_by_node(lecture_page):
    data = _data(lecture_page)
    z1 = next(k for k, v in data["nodes"].items() if v["name"] == "z1")
    node = data["nodes"][z1]
    assert node["where"] == "autodiff_trace.py:16: z1 = w1 / w2"
    code_lines = lecture_page.split('data-line="')
    line_text = next(c for c in code_lines if c.startswith(f'{node["line"]}"'))
    assert "z1 = w1 / w2" in line_text[:200]
    assert f'data-nid="{z1}"' in lecture_page                      # its trace row
    if shutil.which("dot"):
        assert node["svg"] == f"v{z1}" and data["svg"][f"v{z1}"][0] == z1
    assert data["lines"][str(node["line"])][0] == z1


def test_spec_arguments_give_a_page_without_values_or_proof(tmp_path):
    import lenet
    params = lenet.init_params(np.random.default_rng(0))
    out = graphc.report(lenet.loss, params, graphc.Spec((4, 1, 8, 8)), graphc.Spec((4,), "int64"),
                        path=tmp_path / "lenet.html")
    text = out.read_text()
    assert "Not run" in text and "def loss_value_and_grad(" in text
    if shutil.which("dot"):
        assert "conv 3×3, 1→8" in text           # big graph: collapsed by scope


def test_non_scalar_function_is_shown_forward_only(tmp_path):
    def f(x):
        return np.tanh(x) * 2.0
    text = graphc.report(f, np.ones(3), path=tmp_path / "f.html").read_text()
    assert "No backward pass" in text and "Backward trace" not in text


def test_report_without_path_displays_in_jupyter():
    rep = graphc.report(autodiff_trace.f, 1.5, 0.5, proof=False)
    assert isinstance(rep, report_module.Report)
    assert rep._repr_html_().startswith("<iframe srcdoc=")


def test_cli_report(tmp_path, capsys):
    out = tmp_path / "f.html"
    assert main(["report", f"{ROOT / 'examples' / 'autodiff_trace.py'}:f", "--argnums", "0,1",
                 "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert "d_w2" in text and not re.search(r"https?://", text)


_X = np.array([0.1, 0.2])
_LOOPS = {
    "fori_loop": lambda x: np.sum(graphc.fori_loop(0, 4, lambda i, c: np.sin(c), x)),
    "cond": lambda x: np.sum(graphc.cond(x[0] > 0, np.sin, np.cos, x)),
    "while_loop": lambda x: np.sum(graphc.while_loop(lambda c: c[0] < 1.0, lambda c: c * 2.0, x)),
    "scan": lambda x: np.sum(graphc.scan(lambda c, t: (c * t, c), x, np.ones((3, 2)))[1]),
}


@pytest.mark.parametrize("name", sorted(_LOOPS))
def test_structured_control_flow_gets_a_page(name):
    """A loop's or branch's results are written by its own lines: report raised IndexError."""
    page = graphc.report(_LOOPS[name], _X, proof=False).html
    data = json.loads(re.search(r'<script type="application/json" id="graphc-data">(.*?)</script>',
                                page, re.S).group(1))
    assert data["nodes"] and "d_x" in page


def test_a_function_without_source_gets_a_page():
    """Code from exec() (python -c, a notebook's generated code) has no source line to quote."""
    ns = {"np": np}
    exec("def f(x):\n    return np.sum(np.sin(x))\n", ns)
    assert "d_x" in graphc.report(ns["f"], _X, proof=False).html
