"""Slide-ready drawings (issue 19, API.md section 11): the argnums default of grad, validated
options never passed to the function, the Drawing object, the seed node, one naming rule,
forward-left layout, layer boxes named by what they compute, tooltips."""
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from functions import lecture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import autodiff_trace  # noqa: E402
import lenet  # noqa: E402

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def mlp_loss(params, x, y):
    h = nn.relu(x @ params["W1"] + params["b1"])
    return nn.cross_entropy(h @ params["W2"] + params["b2"], y)


def mlp_args():
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(6, 5)), "b1": np.zeros(5), "W2": rng.normal(size=(5, 3)),
              "b2": np.zeros(3)}
    return params, rng.normal(size=(4, 6)), np.array([0, 1, 2, 1])


def lenet_args():
    return (lenet.init_params(np.random.default_rng(0)), graphc.Spec((64, 1, 8, 8)),
            graphc.Spec((64,), "int64"))


def labels(dot_source):
    return re.findall(r'label="((?:[^"\\]|\\.)*)"', dot_source)


# --- argnums: the default of grad ------------------------------------------------------------
def test_backward_differentiates_argument_0_by_default_like_grad():
    text = graphc.render(lecture, 1.5, 0.5, backward=True).source
    assert "d_w1" in text and "d_w2" not in text
    both = graphc.render(lecture, 1.5, 0.5, backward=True, argnums=(0, 1)).source
    assert "d_w1" in both and "d_w2" in both


def test_data_is_neither_differentiated_nor_drawn_as_a_parameter():
    d = graphc.render(mlp_loss, *mlp_args(), backward=True)
    text = d.source
    assert "d_x" not in text and "d_W1" in text and "d_b2" in text
    node_x = re.search(r'\n\s*\d+ \[label="x\\n[^\n]*', text).group(0)
    assert graphc.draw.FAMILY_COLORS["input"] in node_x          # data: an input, not a parameter
    node_w = re.search(r'\n\s*\d+ \[label="W1\\n[^\n]*', text).group(0)
    assert graphc.draw.FAMILY_COLORS["parameter"] in node_w


# --- options: validated, never the function's --------------------------------------------------
@pytest.mark.parametrize("option, value", [
    ("dpi", -3), ("dpi", "high"), ("size", "big"), ("size", (1,)), ("size", (0, 4)),
    ("values", "yes"), ("plumbing", 3), ("rankdir", "XY"), ("legend", None)])
def test_bad_option_values_are_option_errors_naming_what_is_valid(option, value):
    with pytest.raises(graphc.OptionError) as info:
        graphc.render(lecture, 1.5, 0.5, **{option: value})
    assert f"{option}={value!r}" in str(info.value) and graphc.draw.DRAW_OPTIONS[option] in \
        str(info.value)


def test_unknown_option_lists_every_drawing_option():
    with pytest.raises(graphc.OptionError) as info:
        graphc.render(lecture, 1.5, 0.5, title="slide 3")
    text = str(info.value)
    for option in ("rankdir=", "dpi=", "size=", "legend=", "collapse=", "values="):
        assert option in text


def test_drawing_options_never_reach_the_function():
    seen = {}

    def f(x, **kw):
        seen.update(dict.fromkeys(kw))
        return np.sum(x * kw.get("scale", 1.0))

    d = graphc.render(f, np.ones(3), dpi=200, size=(4, 3), legend=False, rankdir="LR",
                      scale=2.0)
    assert set(seen) == {"scale"}
    assert 'dpi=200' in d.source and 'size="4,3!"' in d.source and "rankdir=LR" in d.source


def test_values_need_real_arguments():
    with pytest.raises(graphc.OptionError, match="Spec"):
        graphc.render(lenet.loss, *lenet_args(), values=True)
    with pytest.raises(graphc.OptionError, match="Graph"):
        graphc.render(graphc.trace(lecture, 1.5, 0.5), values=True)


# --- the drawing object ------------------------------------------------------------------------
@needs_dot
def test_render_without_path_returns_a_drawing_for_jupyter(tmp_path):
    d = graphc.render(lecture, 1.5, 0.5, backward=True)
    assert isinstance(d, graphc.drawing.Drawing) and "lecture" in repr(d)
    assert d._repr_svg_().lstrip().startswith(("<?xml", "<svg"))
    assert "<svg" in d._repr_html_() and "max-width:100%" in d._repr_html_()
    out = d.save(tmp_path / "f.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert d.save(tmp_path / "f.dot").read_text() == d.source


def test_big_graphs_are_collapsed_by_scope_inline():
    inline = graphc.render(lenet.loss, *lenet_args(), backward=True)
    assert "scope__conv1" in inline.source and "scope__conv1__bwd" in inline.source
    full = graphc.render(lenet.loss, *lenet_args(), backward=True, collapse=False)
    assert "scope__conv1" not in full.source
    g = graphc.value_and_grad(lenet.loss).graph(*lenet_args())
    if shutil.which("dot"):
        assert "conv 3×3, 1→8" in g._repr_svg_()


# --- the seed, constants, names ----------------------------------------------------------------
def test_backward_seed_is_a_node_not_a_constant():
    text = graphc.render(autodiff_trace.f, 1.5, 0.5, backward=True, argnums=(0, 1)).source
    assert 'seed [label="d_z6 = 1\\nseed"' in text
    # the seed feeds the first adjoints: d_z4 (z6 = z4 * z5) and d_mul (through z5 = z2 + z4)
    firsts = set(re.findall(r"\n\s*seed -> (\d+)", text))
    found = {lab.split(" = ")[0] for n in firsts
             for lab in re.findall(rf'\n\s*{n} \[label="([^"]*)"', text)}
    assert found == {"d_z4", "d_mul"}
    lenet_text = graphc.render(lenet.loss, *lenet_args(), backward=True, collapse=False).source
    assert "seed [label=\"d_loss = 1" in lenet_text
    assert not any(lab.startswith("const\\n") for lab in labels(lenet_text))
    assert any(lab.startswith("d_getitem = full(-0.01562)") for lab in labels(lenet_text))
    assert any(lab.startswith("arange(64)") for lab in labels(lenet_text))


def _forward_names(text):
    return {lab.split(" = ")[0].split("\\n")[0] for lab in labels(text)
            if not lab.startswith(("d_", "reads", "<")) and " = " in lab}


@pytest.mark.parametrize("fn, args", [(autodiff_trace.f, (1.5, 0.5)), (mlp_loss, mlp_args()),
                                      (lenet.loss, lenet_args())])
def test_one_naming_rule_for_forward_and_backward_drawings(fn, args):
    fwd = graphc.render(fn, *args, collapse=False).source
    bwd = graphc.render(fn, *args, backward=True, collapse=False).source
    assert _forward_names(fwd) and _forward_names(fwd) <= _forward_names(bwd)


# --- layout ------------------------------------------------------------------------------------
def _cluster_x(svg_text, title):
    root = ET.fromstring(svg_text)
    for g in root.iter(SVG + "g"):
        if g.get("class") == "cluster" and g.find(SVG + "title").text == title:
            xs = [float(v) for v in re.findall(r"(-?[\d.]+),-?[\d.]+",
                                                 g.find(SVG + "path").get("d"))]
            return min(xs)
    raise AssertionError(f"no {title}")


@needs_dot
@pytest.mark.parametrize("fn, args, opts", [
    (autodiff_trace.f, (1.5, 0.5), {"argnums": (0, 1)}),
    (mlp_loss, mlp_args(), {}),
    (lenet.loss, lenet_args(), {"collapse": False}),
    (lenet.loss, lenet_args(), {"collapse": True})])
def test_forward_cluster_is_left_of_backward_at_every_size(fn, args, opts):
    svg = graphc.render(fn, *args, backward=True, **opts).svg()
    assert _cluster_x(svg, "cluster_forward") < _cluster_x(svg, "cluster_backward")


def test_legend_is_one_row_under_the_title_not_a_cluster():
    text = graphc.render(lecture, 1.5, 0.5, backward=True).source
    assert "cluster_legend" not in text
    head = text[:text.index("subgraph")]
    assert "<table" in head and ">seed<" in head and "reads a forward value" in head
    assert "<table" not in graphc.render(lecture, 1.5, 0.5, legend=False).source


def test_many_saved_values_are_read_boxes_not_long_edges():
    text = graphc.render(lenet.loss, *lenet_args(), backward=True, collapse=False).source
    assert "constraint=false" not in text
    assert any(lab.startswith("reads ") for lab in labels(text))


# --- collapsed layer boxes -----------------------------------------------------------------------
def test_collapsed_layers_are_named_by_what_they_compute():
    text = graphc.render(lenet.loss, *lenet_args(), backward=True, collapse=True).source
    labs = labels(text)
    for words in ("conv 3×3, 1→8 · relu", "conv 3×3, 8→16 · relu", "max pool 2×2",
                  "dense 64→32 · relu", "dense 32→10", "cross-entropy", "∂ conv 3×3, 1→8"):
        assert any(words in lab for lab in labs), words
    assert not any(" ops\\n" in lab or lab.endswith(" ops") for lab in labs)
    conv1 = next(lab for lab in labs if lab.startswith("conv1\\n"))
    assert conv1.index("in: x ") < conv1.index("in: conv1_w ") < conv1.index("in: conv1_b ")
    # the label gather's np.arange sits inside the loss box, not beside it
    assert not any(lab.startswith("arange(64)") for lab in labs)


# --- tooltips ----------------------------------------------------------------------------------
@needs_dot
def test_svg_tooltips_show_source_code_line_type_and_value():
    svg = graphc.render(autodiff_trace.f, 1.5, 0.5, backward=True, argnums=(0, 1),
                        values=True).svg()
    root = ET.fromstring(svg)
    tips = {}
    for g in root.iter(SVG + "g"):
        if g.get("class") == "node" and g.get("id", "").startswith("v"):
            a = g.find(f".//{SVG}a")
            tips[g.find(SVG + "title").text] = a.get(XLINK + "title")
    z1 = next(t for t in tips.values() if t.startswith("autodiff_trace.py:16: z1 = w1 / w2"))
    assert re.search(r"code line \d+: z1 = w1 / w2", z1)
    assert "f64[]" in z1 and "value: 3" in z1
    assert any("value: 154.319" in t for t in tips.values())       # d_w1 at (1.5, 0.5)
    assert "= 3\n" in "\n".join(t.text or "" for t in root.iter(SVG + "text")) + "\n"
