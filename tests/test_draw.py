"""Drawings: SVG parsed as XML, DOT checked by the dot program, scopes, collapse, errors."""
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import graphc
import graphc.nn as nn
from functions import lecture

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path):
    root = ET.parse(path).getroot()
    return [t.text or "" for t in root.iter(SVG + "text")], root


def cluster_titles(root):
    out = []
    for g in root.iter(SVG + "g"):
        if g.get("class") == "cluster":
            title = g.find(SVG + "title")
            out.append(title.text if title is not None else "")
    return out


@needs_dot
def test_lecture_forward_svg_has_every_node(tmp_path):
    path = graphc.render(lecture, 1.5, 0.5, path=tmp_path / "f.svg")
    texts, root = svg_texts(path)
    joined = " ".join(texts)
    for label in ("w1", "w2", "z1 = ÷", "z2 = sin", "z3 = exp", "z4 = −", "z5 = +", "f64[]"):
        assert label in joined, label
    g = graphc.trace(lecture, 1.5, 0.5)
    ops = [n for n in g.nx.nodes if g.nx.nodes[n]["op"] not in ("input", "const")]
    assert sum(1 for t in texts if " = " in t) == len(ops)


@needs_dot
def test_backward_svg_has_both_parts(tmp_path):
    path = graphc.render(lecture, 1.5, 0.5, path=tmp_path / "fb.svg", backward=True,
                         argnums=(0, 1))
    texts, root = svg_texts(path)
    titles = cluster_titles(root)
    assert "cluster_forward" in titles and "cluster_backward" in titles
    joined = " ".join(texts)
    assert "d_w1" in joined and "d_w2" in joined and "d_z1" in joined


def test_dot_text_needs_no_program(tmp_path):
    path = graphc.render(lecture, 1.5, 0.5, path=tmp_path / "f.dot", backward=True)
    text = path.read_text()
    assert text.startswith("digraph") and "cluster_backward" in text
    if shutil.which("dot"):
        proc = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True)
        assert proc.returncode == 0, proc.stderr


def cnn(params, x, y):
    with graphc.scope("conv1"):
        h = nn.max_pool2d(nn.relu(nn.conv2d(x, params["w1"], params["b1"])), 2)
    with graphc.scope("dense"):
        logits = nn.flatten(h) @ params["W"]
    return nn.cross_entropy(logits, y)


def cnn_args():
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(2, 1, 3, 3)), "b1": np.zeros(2), "W": rng.normal(size=(18, 3))}
    return params, rng.normal(size=(2, 1, 8, 8)), np.array([0, 2])


@needs_dot
def test_scopes_become_clusters(tmp_path):
    path = graphc.render(cnn, *cnn_args(), path=tmp_path / "cnn.svg", backward=True)
    _, root = svg_texts(path)
    titles = cluster_titles(root)
    assert any("conv1" in t for t in titles) and any("dense" in t for t in titles)


@needs_dot
def test_collapse_draws_one_box_per_scope(tmp_path):
    full = graphc.render(cnn, *cnn_args(), path=tmp_path / "full.svg", backward=True,
                         plumbing=True)       # every operation, reshapes included
    small = graphc.render(cnn, *cnn_args(), path=tmp_path / "small.svg", backward=True, collapse=True)
    def n_nodes(root):     # "reads x" annotations (r_...) and the seed are not values
        return len([g for g in root.iter(SVG + "g") if g.get("class") == "node"
                    and not g.find(SVG + "title").text.startswith(("r_", "seed"))])
    n_full = n_nodes(svg_texts(full)[1])
    texts, root = svg_texts(small)
    n_small = n_nodes(root)
    assert n_small < n_full / 2
    joined = " ".join(texts)
    assert "conv1" in joined and "in:" in joined and "f64[2,1,8,8]" in joined


def test_graph_methods(tmp_path):
    g = graphc.trace(lecture, 1.5, 0.5)
    import graphviz
    assert isinstance(g.to_dot(), graphviz.Digraph)
    assert g.render(tmp_path / "g.gv").read_text().startswith("digraph")
    if shutil.which("dot"):
        assert g._repr_svg_().lstrip().startswith("<?xml") or "<svg" in g._repr_svg_()


def test_missing_dot_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(graphc.GraphcError) as info:
        graphc.render(lecture, 1.5, 0.5, path=tmp_path / "f.svg")
    msg = str(info.value)
    assert "apt-get install graphviz" in msg and "brew install graphviz" in msg
    # DOT output still works without the program
    assert graphc.render(lecture, 1.5, 0.5, path=tmp_path / "f.dot").exists()


def test_unknown_format(tmp_path):
    with pytest.raises(graphc.GraphcError, match="format"):
        graphc.render(lecture, 1.5, 0.5, path=tmp_path / "f.jpg")


def test_hostile_labels_are_escaped(tmp_path):
    def f(params):
        return np.sum(params['a"b<c>{d}|e\\'] * 2.0)
    path = graphc.render(f, {'a"b<c>{d}|e\\': np.ones(2)}, path=tmp_path / "h.dot", backward=True)
    if shutil.which("dot"):
        proc = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True)
        assert proc.returncode == 0, proc.stderr
