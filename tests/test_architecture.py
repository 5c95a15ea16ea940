"""The architecture's measurable promises (issue 13), kept true by the test-suite.

Measured by tools/arch_report.py on the package (tests excluded): imports inside
functions count as dependencies.
"""
import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("arch_report", ROOT / "tools" / "arch_report.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["arch_report"] = mod
    spec.loader.exec_module(mod)
    return mod.report()


def test_no_import_cycle_longer_than_three_modules(report):
    assert [c for c in report["cycles"] if len(c) > 3] == []


def test_no_module_over_500_lines(report):
    assert report["long_modules"] == []


def test_no_function_over_60_lines(report):
    assert report["long_functions"] == []


def test_no_node_attribute_dict_reads_outside_ir(report):
    assert report["node_dict_reads"] == []


def test_the_report_sees_the_package(report):
    # a measure over nothing would pass trivially
    assert report["modules"] > 30 and report["imports"] > 100



def test_every_module_has_a_layer(report):
    # tools/arch_report.py's LAYERS (docs/architecture.md, "Layers"): place a new module there
    assert report["unlayered"] == []


def test_imports_only_go_down(report):
    assert report["upward_imports"] == []


def test_graph_check_names_the_broken_node():
    import numpy as np

    import graphc
    g = graphc.trace(lambda x: np.exp(x) * 2.0, np.ones(3))
    g.check()
    exp = next(n for n in g if g[n].op == "exp")
    g[exp].args = ()            # args no longer match the edges
    try:
        g.check()
    except AssertionError as e:
        assert f"node {exp}" in str(e)
    else:
        raise AssertionError("check() accepted a node whose args disagree with its edges")


def test_nodes_read_as_typed_records_and_as_the_contract_mapping():
    import numpy as np

    import graphc
    from graphc.ir import Node
    g = graphc.trace(lambda x: np.exp(x) * 2.0, np.ones(3))
    n = g.order()[1]
    node = g[n]
    assert isinstance(node, Node) and node.op == "exp" and node.shape == (3,)
    # API.md section 3: graph.nx node attributes, read-only
    attrs = g.nx.nodes[n]
    assert attrs["op"] == "exp" and attrs["shape"] == (3,) and attrs["dtype"] == np.float64
    assert {"op", "shape", "dtype", "name", "params", "where"} <= set(attrs)
    try:
        attrs["op"] = "log"
    except TypeError:
        pass
    else:
        raise AssertionError("node attributes are writable through the mapping")
