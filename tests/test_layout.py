"""The architecture as the layout promises it: each folder imports only the folders the
README's table allows (``ALLOWED``, the same table), no import cycles (between modules,
type-only imports included, and between the folders by role), and the frame path never
reads the shared data folder (only offline code and tests do)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "realtime"
OFFLINE = (
    "realtime.train",
    "realtime.eval",
    "realtime.export",
    "realtime.bench",
    "realtime.corpus",
    "realtime.peers",
)

#: What each folder (or top-level module) may import of ours: README's layout table.
#: The frame path goes up one floor at a time (core; live and render; outputs; app;
#: panel; cli); the offline folders sit beside it and use it, and each other one way.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "live": {"core"},
    "render": {"core"},
    "outputs": {"core", "render"},
    "app": {"core", "live", "render", "outputs"},
    "panel": {"core", "app", "outputs", "render"},
    "cli": {"core", "live", "render", "outputs", "app", "panel"},
    "__main__": {"cli"},
    "corpus": {"core", "live"},
    "peers": {"core", "live"},
    "bench": {"core", "live", "render", "eval", "peers"},
    "train": {"core", "live", "peers"},
    "export": {"core", "live", "train"},
    "eval": {"core", "live", "render", "train", "peers"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Modules of the package that ``path`` imports (anywhere in the file: function
    bodies and ``if TYPE_CHECKING`` too, since a type-only import is a dependency of the
    code all the same)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for a in node.names:
                full = f"{base}.{a.name}"
                if full in modules:
                    out.add(full)
                elif base in modules:
                    out.add(base)
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _role(module: str) -> str:
    """realtime.live.engines.onnx -> live; realtime.cli -> cli; realtime -> ''."""
    return module.split(".")[1] if "." in module else ""


def test_folders_import_only_what_the_table_allows():
    """Every import between folders is one README's layout table shows; a new folder
    has to be put in the table (and so in the README) before it can import anything."""
    offenders = sorted(
        f"{name} -> {dep}"
        for name, deps in _graph().items()
        for dep in deps
        if _role(name) and _role(dep) != _role(name) and _role(dep) not in ALLOWED.get(_role(name), set())
    )
    assert not offenders, "imports the layout table does not allow:\n" + "\n".join(offenders)


def test_readme_shows_the_same_table():
    """README's layout table is ALLOWED, row for row, so the picture a newcomer reads is
    the one this test enforces."""
    text = (ROOT / "README.md").read_text().split("## Layout", 1)[1]
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    shown = {
        folder.strip().strip("`"): {d.strip() for d in deps.split(",")} - {"—"}
        for folder, deps in rows[1:]  # after the header
    }
    assert shown == ALLOWED


def test_no_module_imports_one_that_imports_it_back():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_folders_by_role_depend_one_way():
    """core, live, render, app, ...: what one folder uses never uses it back (a
    top-level module such as realtime.cli is its own role)."""
    folders: dict[str, set[str]] = {}
    for name, deps in _graph().items():
        folders.setdefault(_role(name), set()).update(_role(d) for d in deps if _role(d) != _role(name))
    cycles = _cycles(folders)
    assert not cycles, "folder cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_frame_path_does_not_read_shared_data():
    offenders = []
    for name, path in _modules().items():
        if name.startswith(OFFLINE) or name == "realtime.core.paths":
            continue
        text = path.read_text()
        if "SHARED_DATA" in text or "MEDIA" in text or '"shared"' in text:
            offenders.append(name)
    assert not offenders, f"runtime modules that read ../shared: {offenders}"
