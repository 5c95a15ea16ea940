"""Generated-code hygiene: no user-controlled text ever becomes code.

Names (parameters, dict keys, locals, function and file names) are
sanitized, unique and never shadow ``np`` or a builtin; constants are values,
spelled by graphc, never the user's text.  Each test parses the generated
module with ``ast`` and checks what it can do, rather than grepping text.
"""
import ast
import builtins
import enum
import functools
import keyword

import numpy as np
import pytest

import graphc
from graphc.naming import Namespace, sanitize, unique_names

HOSTILE_KEYS = ["x; import os", "__import__('os')", "a\nb", "σ", "np", "sum", "lambda",
                '"""', "\\", "d_x", "", "1x", "x-y", "class", "print(1)#"]

# Names generated code may read that are not its own locals or parameters.
ALLOWED_GLOBALS = {"np", "bytes", "range", "len", "slice", "Ellipsis", "None", "True", "False",
                   # read by the entry-check helpers (_sig, _signature_error)
                   "AttributeError", "ValueError", "bool", "dict", "float", "int", "isinstance", "list", "str",
                   "tuple", "type", "zip",
                   # read by the `math` body of Python-float signatures (graphc/codegen_scalar.py)
                   "math", "ArithmeticError", "abs", "object"}


def _check_module(src, params=()):
    """Parse generated source; assert it imports only numpy (and math, for Python-float
    arguments: graphc/codegen_scalar.py) and calls nothing unsafe."""
    tree = ast.parse(src)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in imports] in (["import numpy as np"],
                                                  ["import math", "import numpy as np"]), src
    assigned, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (assigned if isinstance(node.ctx, ast.Store) else loaded).add(node.id)
        elif isinstance(node, ast.arg):
            assigned.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            assigned.add(node.name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("eval", "exec", "__import__", "compile", "open",
                                        "getattr"), src
    # np and builtins are never rebound; every name read is defined or allowed
    assert not assigned & (set(dir(builtins)) | {"np", "numpy", "math"} | set(keyword.kwlist)), assigned
    assert loaded <= assigned | ALLOWED_GLOBALS, loaded - assigned - ALLOWED_GLOBALS
    assert all(n.isascii() and n.isidentifier() and not n.startswith("__") for n in assigned)
    return tree


def _strings(tree):
    """String constants of the module other than docstrings."""
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


# --- names ---------------------------------------------------------------------------------
def test_sanitize_properties():
    for text in HOSTILE_KEYS + ["<lambda>", "x_", "_x", "__x__", "Δt", "é", "x y", "0"]:
        name = sanitize(text)
        assert name.isascii() and name.isidentifier(), (text, name)
        assert not keyword.iskeyword(name) and name not in dir(builtins) and name != "np"
        assert not name.startswith("_")
        assert sanitize(name) == name            # idempotent
    assert sanitize("σ") == "sigma" and sanitize("Δt") == "Delta_t"
    names = unique_names(["x", "x_", "_x", "np", "np_", "σ", "sigma"])
    assert len(set(names)) == len(names)
    ns = Namespace()
    assert len({ns.new(t) for t in HOSTILE_KEYS * 2}) == 2 * len(HOSTILE_KEYS)


def test_hostile_dict_keys_stay_data():
    def loss(params, x):
        total = 0.0
        for k, v in params.items():
            total = total + np.sum(v * x) * (len(k) + 1)
        return total
    params = {k: np.full(2, float(i + 1)) for i, k in enumerate(HOSTILE_KEYS)}
    x = np.array([1.0, 2.0])
    vg = graphc.value_and_grad(loss)
    src = vg.source(params, x)
    tree = _check_module(src)
    # every key appears only as a string literal (a subscript or a result key)
    assert set(HOSTILE_KEYS) <= set(_strings(tree))
    value, grads = vg(params, x)
    assert list(grads) == HOSTILE_KEYS
    for k in HOSTILE_KEYS:
        np.testing.assert_allclose(grads[k], x * (len(k) + 1))
    assert value == pytest.approx(loss(params, x))


def test_non_literal_dict_keys_are_refused():
    class Key:
        def __repr__(self):
            return "__import__('os').getcwd()"

    class S(str):
        def __repr__(self):
            return "__import__('os')"
    for key in (Key(), S("w"), float("nan"), (1, Key())):
        with pytest.raises(graphc.UnsupportedError, match="dict key"):
            graphc.compile(lambda p: sum(p.values()))({key: 1.0})
    # int, tuple, bool and None keys are literals: fine (False, not True: True == 1 would
    # merge with the int key)
    p = {1: 1.0, (2, "a"): 2.0, None: 3.0, False: 4.0}
    src = graphc.compile(lambda p: {k: v * 2.0 for k, v in p.items()}).source(p)
    _check_module(src)
    got = graphc.compile(lambda p: {k: v * 2.0 for k, v in p.items()})(p)
    assert got == {1: 2.0, (2, "a"): 4.0, None: 6.0, False: 8.0}
    assert [type(k) for k in got] == [type(k) for k in p]


def test_hostile_static_results_and_defaults():
    class Evil(int):
        def __repr__(self):
            return "__import__('os').getcwd()"
    with pytest.raises(graphc.UnsupportedError, match="static value"):
        graphc.compile(lambda x: (x * 2.0, Evil(3)))(1.0)

    class Mode(enum.IntEnum):
        TRAIN = 1

    class Name(str):
        def __repr__(self):
            return "__import__('os')"

    def f(x, mode=Mode.TRAIN, tag=Name("t"), opts={"k": 2}):
        return x * float(mode) * opts["k"]
    cf = graphc.compile(f)
    src = cf.source(2.0)
    tree = _check_module(src)
    assert "__import__('os')" not in src and "Mode" not in src
    assert cf(2.0) == 4.0
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                and not n.name.startswith("_"))           # not the entry-check helpers
    assert ast.literal_eval(main.args.defaults[0]) == 1


def test_parameter_names_are_unique_and_keywords_work():
    ns = {}
    exec("def f(x, x_, np, sum, σ, *, lam=1.0, lambda_=2.0, μ=3.0):\n"
         "    return (x * x_ + np * sum + σ) * lam * lambda_ * μ\n", ns)
    f = ns["f"]
    args = (1.0, 2.0, 3.0, 4.0, 5.0)
    for transform in (graphc.compile, graphc.grad):
        cf = transform(f)
        tree = _check_module(cf.source(*args, lam=1.0, μ=2.0))
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                  and not n.name.startswith("_"))      # not the entry-check helpers
        names = [a.arg for a in fn.args.args + fn.args.kwonlyargs]
        assert len(set(names)) == len(names) == 8
        assert "np" not in names and "sum" not in names
    assert graphc.compile(f)(*args, lam=1.0, μ=2.0) == pytest.approx(f(*args, lam=1.0, μ=2.0))
    assert graphc.compile(f)(*args, μ=1.0) == pytest.approx(f(*args, μ=1.0))
    g = graphc.grad(f, argnums=(0, 1, 4))(*args, lambda_=1.0)
    assert g == pytest.approx((2.0 * 3.0, 1.0 * 3.0, 3.0))   # μ defaults to 3


def test_local_names_never_shadow_np_or_builtins():
    def f(x):
        np_ = x * 2.0
        sum = np_ + 1.0            # noqa: A001 (the point)
        d_x = sum * x
        lambda_ = np.exp(d_x)
        σ = lambda_.sum()
        return σ
    _check_module(graphc.grad(f).source(np.ones(3)))
    src = graphc.compile(f).source(np.ones(3))
    _check_module(src)
    assert "lambda_ = " in src and "d_x = " in src and "sum_ = " in src
    np.testing.assert_allclose(graphc.grad(f)(np.ones(3) * 0.1),
                               _fd(lambda v: float(f(v)), np.ones(3) * 0.1), rtol=1e-6)


def _fd(fn, x, eps=1e-6):
    out = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        out[i] = (fn(x + e) - fn(x - e)) / (2 * eps)
    return out


def test_function_names_that_are_not_identifiers(tmp_path):
    def g(x, y):
        return np.sum(x * y)
    g.__name__ = g.__qualname__ = 'g"""\nimport os\n"""'
    part = functools.partial(lambda x, y: np.sum(x * y), y=np.ones(2))

    class Callable:
        def __call__(self, x):
            return np.sum(x * 3.0)
    cases = [(lambda x: np.sum(x * x), (np.ones(2),)), (part, (np.ones(2),)),
             (Callable(), (np.ones(2),)), (g, (np.ones(2), np.ones(2)))]
    for fn, args in cases:
        for transform in (graphc.compile, graphc.grad):
            src = transform(fn).source(*args)
            tree = _check_module(src)
            defs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)
                    and not n.name.startswith("_")]    # not the entry-check helpers
            assert len(defs) == 1 and defs[0].isidentifier()
            assert "import os" not in src.replace("# ", "")
        path = graphc.export(graphc.grad(fn), *args, path=tmp_path / "m.py", overwrite=True)
        _check_module(path.read_text())


def test_hostile_file_names_stay_in_comments():
    ns = {}
    code = "import numpy as np\ndef f(x):\n    y = np.exp(x)\n    return y.sum()\n"
    exec(compile(code, "evil\nimport os\r\x85\u2028.py", "exec"), ns)
    src = graphc.grad(ns["f"]).source(np.ones(2))
    _check_module(src)
    assert not any(line.startswith("import os") for line in src.splitlines())
    assert src.count("\n") == len(src.splitlines())       # no stray line breaks


# --- constants -------------------------------------------------------------------------------
def test_constants_are_values_not_user_text():
    table = np.linspace(0.0, 1.0, 4000).reshape(40, 100)   # large: module level, once
    small = np.array([1.5, -2.0, 3.25])

    def f(x, v):
        return np.sum(x * table) + np.sum(v * small) + np.sum(v * np.arange(3.0))
    cf = graphc.compile(f)
    x, v = np.ones((40, 100)), np.ones(3)
    src = cf.source(x, v)
    tree = _check_module(src)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
              and not n.name.startswith("_"))          # not the entry-check helpers
    body = ast.unparse(fn)
    assert len(body) < 1500                        # the table is not in the function body
    assigns = [n for n in tree.body if isinstance(n, ast.Assign)
               and n.targets[0].id not in ("_SIGNATURE", "_SIGS")]   # (entry-check helpers)
    # table and small, closed-over arrays: module-level defaults of keyword parameters,
    # so they are read at each call (issue 12); np.arange(3.0) stays a literal
    assert [a.targets[0].id for a in assigns] == ["SMALL_DEFAULT", "TABLE_DEFAULT"]
    assert "np.arange(3.0)" not in src and "linspace" not in src
    assert cf(x, v) == pytest.approx(f(x, v), rel=1e-15)
    # module constants are not handed out for mutation
    out = graphc.compile(lambda x: table + 0.0 * x)(0.0)
    out[0, 0] = 99.0
    assert graphc.compile(lambda x: table + 0.0 * x)(0.0)[0, 0] == 0.0


def test_special_float_constants_are_spelled_by_graphc():
    def f(x):
        return np.sum(np.minimum(x, np.inf) + np.maximum(x, -np.inf)) + np.float32(0.1)
    src = graphc.compile(f).source(np.ones(2))
    _check_module(src)
    assert graphc.compile(f)(np.ones(2)) == pytest.approx(f(np.ones(2)))
