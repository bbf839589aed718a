"""Measure the package's import structure: what `spectrum parse` loads, and the import cycles.

    python scripts/import_map.py

* modules loaded: the ``spectrum_parsing`` modules in ``sys.modules`` after importing what ``spectrum parse``
  runs (the CLI, the pipeline and the output writers), in a fresh interpreter;
* cycles: strongly connected components of the graph of imports between package modules, read from the
  source with ``ast``: module-level imports only, then counting deferred (in-function) imports too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "spectrum_parsing"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_level_imports(path: Path, name: str, known: set[str], deferred: bool = False) -> set[str]:
    """Package modules ``name`` imports at module level (with ``deferred``: also inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in tree.body:  # `if TYPE_CHECKING:` blocks are skipped
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        inside = deferred or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for sub in ast.walk(node) if inside else []:
            if isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (sub.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                submodules = [f"{base}.{a.name}" for a in sub.names if f"{base}.{a.name}" in known]
                found.update(submodules or ([base] if base in known else []))
            elif isinstance(sub, ast.Import):
                found.update(a.name for a in sub.names if a.name in known)
    found.discard(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main() -> None:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    graph = {name: module_level_imports(path, name, known) for name, path in files.items()}
    loaded = subprocess.run([sys.executable, "-c", (
        "import sys, json; import spectrum_parsing.cli, spectrum_parsing.pipeline, spectrum_parsing.writers; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('spectrum_parsing'))))")],
        capture_output=True, text=True, check=True).stdout
    modules = json.loads(loaded)
    found = cycles(graph)
    everything = cycles({name: module_level_imports(path, name, known, deferred=True) for name, path in files.items()})
    print(f"package modules: {len(files)}")
    print(f"loaded by `spectrum parse`: {len(modules)}")
    print("  of which data/training/evaluation/losses:",
          [m for m in modules if any(k in m for k in (".data", ".training", ".evaluation", ".losses"))] or "none")
    print(f"module-level import cycles: {len(found)}")
    for comp in found:
        print("  " + " <-> ".join(comp))
    print(f"cycles counting deferred (in-function) imports too: {len(everything)}")
    for comp in everything:
        print("  " + " <-> ".join(comp))


if __name__ == "__main__":
    main()
