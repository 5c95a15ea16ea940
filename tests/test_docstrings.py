"""The examples in graphc's docstrings run and print what they say."""
import doctest
import importlib
import pkgutil

import pytest

import graphc

MODULES = sorted(m.name for m in pkgutil.walk_packages(graphc.__path__, "graphc."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_public_api_has_examples():
    for name in ("trace", "grad", "value_and_grad", "compile", "export", "render", "scope", "Spec", "example"):
        doc = getattr(graphc, name).__doc__ or ""
        assert "Examples" in doc and ">>>" in doc, name
