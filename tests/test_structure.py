"""The shape of the code: no import cycle anywhere in engine/, every engine module importable on its own, engine never
imports Flask, and modules stay readable in one sitting (over ~400 lines, the module's docstring says why)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

ENGINE = ROOT / "engine"
SIZE_RULE = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ENGINE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The engine modules ``name`` imports, at any level of its code (lazy imports inside functions count too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in modules:
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name:
                found.add(t)
    return found


def test_no_import_cycle_in_engine():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # a package imports its own submodules by design; the cycle rule is about everything else
    edges = {a: {b for b in bs if not b.startswith(a + ".") and not a.startswith(b + ".")} for a, bs in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("engine 中有循环导入：" + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    assert "engine.services" in graph and "engine.usecases.tasks" in graph


def test_every_engine_module_imports_alone_and_none_imports_flask():
    modules = sorted(_modules())
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    before = set(sys.modules)\n"
            "    importlib.import_module(name)\n"
            "    assert 'flask' not in sys.modules, name + ' imports flask'\n")
    for name in modules:   # each in a fresh interpreter: an import that only works after another module fails here
        done = subprocess.run([sys.executable, "-c", code, name], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{name}: {done.stderr[-2000:]}"


def test_modules_are_small_or_say_why():
    long_without_reason = []
    for path in sorted(list(ENGINE.rglob("*.py")) + list((ROOT / "web").glob("*.py"))):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > SIZE_RULE:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "400" not in doc:
                long_without_reason.append(f"{path.relative_to(ROOT)}（{text.count(chr(10))} 行）")
    assert long_without_reason == [], f"超过 {SIZE_RULE} 行而文档字符串未说明原因：{long_without_reason}"
