"""Several paths per signature: a compiled callable meeting a failing guard.

Generated code holds the path its trace took and checks each decision where it
was taken (:mod:`graphc.codegen_guards`).  When a guard fails, its ``GuardFailed``
says which guard (its position on the path) and what the condition gives now.
:class:`Paths` stands in a :class:`graphc.compiled.Compiled` cache entry for a
signature whose code has guards: it keeps every path traced so far, indexed by the
prefixes of their decisions (a small decision tree), so a failure at guard ``i``
with value ``v`` leads to the cached path that took the same first ``i`` decisions
and ``v`` next; only when none did is the function traced again, with the call's
arguments, and the new path cached next to the others (each path is traced once).
At most :data:`MAX_PATHS` per signature: past that one warning names the guard that
keeps failing, and further new paths are traced and run without being cached.

``source`` is one module holding every path (a function per path and a dispatcher
that follows the same decision tree), so exported modules run every path traced
before the export and raise the path's ``GuardFailed`` (a ``ValueError`` naming the
condition and its file:line) for one they do not hold.
"""
from __future__ import annotations

import collections
import linecache

import numpy as np

from .codegen_guards import GUARD_CLASS
from .errors import ControlFlowError, GraphcWarning, warn_at
from .floats_call import NO_HOT

__all__ = ["MAX_PATHS", "Paths", "guarded_entry"]

#: Paths each signature keeps; more are traced and run, uncached, after one warning.
MAX_PATHS = 8


class _Path:
    """One traced path: its cache entry, its decisions and its module's GuardFailed."""

    __slots__ = ("entry", "decisions", "error")

    def __init__(self, entry):
        g = entry.graph
        guards = sorted((g[n].params["index"], g[n].params["expected"])
                        for n in g if g[n].op == "guard")
        self.entry = entry
        self.decisions = tuple(v for _, v in guards)
        self.error = _module_globals(entry.fn).get(GUARD_CLASS)


def _module_globals(fn) -> dict:
    fn = getattr(fn, "__wrapped__", fn)       # a renaming wrapper (compiled._renaming_call)
    return getattr(fn, "__globals__", {})


def guarded_entry(compiled, key, entry):
    """``entry`` itself, or a :class:`Paths` holding it when its code has guards."""
    if entry.has_spec or not any(entry.graph[n].op == "guard" for n in entry.graph):
        return entry
    return Paths(compiled, key, entry)


_NO_LAST = object()


class _Stale(Exception):
    """A closed-over array changed shape or dtype since its path was traced."""


class Paths:
    """The cache entry of a guarded signature (``fn``, ``graph``, ``source`` as an entry)."""

    has_spec = False
    closure = ()

    def __init__(self, compiled, key, entry):
        self.compiled, self.key = compiled, key
        self.func_name = entry.func_name
        self.paths: list = []
        self.prefixes: dict = {}          # decisions prefix -> the first path taking it
        self.failures = collections.Counter()   # (where, condition) -> new paths it caused
        self.warned = False
        self._source = None
        self.last = self._add(_Path(entry))
        self.fn = self._call

    def _add(self, path):
        self.paths.append(path)
        for i in range(len(path.decisions) + 1):
            self.prefixes.setdefault(path.decisions[:i], path)
        self._source = None
        return path

    @property
    def graph(self):
        """The graph of the path the last call took."""
        return self.last.entry.graph

    @property
    def source(self) -> str:
        if self._source is None:
            self._source = combined_source([p.entry for p in self.paths],
                                           [p.decisions for p in self.paths], self.func_name)
        return self._source

    # --- calling -------------------------------------------------------------
    def _call(self, *args, **kwargs):
        path, fresh = self.last, False
        while True:
            try:
                out = _run(path.entry, args, kwargs)
            except _Stale:
                return self._restale(args, kwargs)
            except ValueError as e:
                if path.error is None or type(e) is not path.error:
                    raise
                path, fresh = self._next(path, e, fresh, args, kwargs)
                continue
            if path in self.paths:
                self.last = path
            else:                    # past MAX_PATHS: traced and run, not cached
                forget_source(path.entry)
            return out

    def _next(self, path, e, fresh, args, kwargs):
        """The path to try after ``path`` failed with ``e``; ``(path, traced now)``."""
        prefix = path.decisions[:e.index] + (e.value,)
        known = self.prefixes.get(prefix)
        if known is not None:
            return known, False
        if fresh:
            raise _inconsistent(e)
        with self.compiled._lock:
            known = self.prefixes.get(prefix)      # another thread traced it meanwhile
            if known is not None:
                return known, False
            self.failures[(e.where, e.condition)] += 1
            new = _Path(self.compiled._build(args, kwargs))
            if new.decisions[:len(prefix)] != prefix:
                raise _inconsistent(e)
            if len(self.paths) < MAX_PATHS:
                return self._add(new), True
            self._warn_full()
            return new, True

    def _warn_full(self):
        if self.warned:
            return
        self.warned = True
        (where, cond), n = self.failures.most_common(1)[0]
        warn_at(f"{self.compiled.__name__} has traced {MAX_PATHS} paths for one signature; "
                f"the guard `{cond}` keeps taking new ones ({n} so far). New paths are traced "
                "and run without being cached (correct, but slow). Hint: write the loop or "
                "branch with graphc.fori_loop / graphc.while_loop / graphc.cond, which keep "
                "it in one traced path", where, GraphcWarning)

    def _restale(self, args, kwargs):
        compiled = self.compiled
        with compiled._lock:
            if compiled._cache.get(self.key) is self:
                compiled._evict(self.key)
            compiled._last = _NO_LAST     # (never an entry, nor a missing one)
            compiled._hot = NO_HOT        # (nor its floats-only code: graphc/floats_call.py)
        return compiled(*args, **kwargs)

    def path_of(self, args, kwargs):
        """The path these arguments take (runs them: a failing guard may trace it)."""
        self._call(*args, **kwargs)
        return self.last


def forget_source(entry):
    """Drop the linecache text of an entry's generated module (kept for tracebacks)."""
    code = getattr(entry.fn, "__code__", None)
    if code is not None and code.co_filename.startswith("<graphc:"):
        linecache.cache.pop(code.co_filename, None)


def _run(entry, args, kwargs):
    if not entry.closure:
        return entry.fn(*args, **kwargs)
    current = {}
    for kw, cell, (shape, dtype) in entry.closure:
        try:
            value = cell.cell_contents
        except ValueError:
            value = None
        if type(value) is not np.ndarray or value.shape != shape or value.dtype != dtype:
            raise _Stale
        current[kw] = value
    return entry.fn(*args, **kwargs, **current)


def _inconsistent(e):
    return ControlFlowError(
        f"{e.condition} at {e.where} gave {e.value!r} in the generated code but not while "
        "tracing, for the same arguments: the value sits on a rounding boundary",
        where=e.where,
        hint="compare with a tolerance that is not hit exactly, or decide with np.where / "
             "graphc.cond")


# --- one module holding every path -----------------------------------------------------
def combined_source(entries, decisions, func_name) -> str:
    """Module text with each path's function and a dispatcher over their decisions."""
    if len(entries) == 1:
        return entries[0].source
    first = entries[0]
    lines = first.source.splitlines()
    header = [lines[0].replace(". Do not edit.", f": {len(entries)} paths. Do not edit."),
              "import numpy as np", "", ""]
    parts = []
    for k, entry in enumerate(entries):
        text = entry.source.splitlines()
        body = text[2:entry.body_end]
        while body and not body[0].strip():
            body = body[1:]
        parts += [f"def _{func_name}_path_{k}():",
                  f'    """Path {k}: decisions {decisions[k]!r}."""']
        parts += [("    " + line) if line.strip() else "" for line in body]
        parts += [f"    return {func_name}", "", ""]
    table = ([f"_PATHS = [{', '.join(f'_{func_name}_path_{k}()' for k in range(len(entries)))}]",
              "_DECISIONS = ["] + [f"    {d!r}," for d in decisions] + ["]", "", ""])
    dispatch = _dispatcher(func_name)
    helpers = lines[first.body_end:]
    return "\n".join(header + parts + table + dispatch + helpers) + "\n"


def _dispatcher(func_name):
    return [
        f"def {func_name}(*args, **kwargs):",
        '    """Run the path these arguments take: each path checks its decisions (guards);',
        "    at a failing one, go on with the path that took the same decisions before it",
        '    and this one next.  A path not held here raises its GuardFailed (a ValueError)."""',
        "    path = 0",
        "    while True:",
        "        try:",
        "            return _PATHS[path](*args, **kwargs)",
        f"        except {GUARD_CLASS} as e:",
        "            prefix = _DECISIONS[path][:e.index] + (e.value,)",
        "            path = next((i for i, d in enumerate(_DECISIONS)",
        "                         if d[:e.index + 1] == prefix), None)",
        "            if path is None:",
        "                raise",
    ]
