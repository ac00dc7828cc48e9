"""The import diagram of the README, enforced: every module imports only layers below its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "stylecraft"

#: The README's diagram, bottom up; a module may import its own package and any lower layer.
LAYERS = [
    {"errors", "progress", "choices"},
    {"checks", "files"},
    {"images"},
    {"torchfile", "losses", "runtime", "video", "photos"},
    {"features", "colour"},
    {"tiling"},
    {"objective"},
    {"optimize", "feedforward", "universal", "report", "quality"},
    {"api"},
    {"cli", "studio"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: The CLI reads the studio's defaults (studio.config imports no web package) and starts it (``serve``).
ALLOWED = {("cli", "studio.config"), ("cli", "studio.app")}


def _imports(path: Path) -> set[str]:
    """The stylecraft modules ``path`` imports, as dotted names below the package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[: len(parts) - node.level])  # the importing module's package, or above it
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {target} if node.module else {".".join([*base, a.name]) for a in node.names}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found |= {n.removeprefix("stylecraft.") for n in names if n.startswith("stylecraft.")}
    return {name for name in found if name}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for target in _imports(path):
        top = target.split(".")[0]
        if top == own or (own, target) in ALLOWED:
            continue
        assert top in RANK, f"{path.name} imports {target}, which is in no layer"
        assert RANK[top] < RANK[own], f"{own} imports {target}: upward or sideways in the diagram"


def test_the_diagram_names_every_module() -> None:
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.glob("*")
            if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())}
    assert tops - {"__init__", "__main__"} == set(RANK)


def test_no_module_imports_itself_through_others() -> None:
    """No import cycle between modules, at any depth, counting imports inside functions too (a cycle there is
    a seam: two modules that each need the other's names)."""
    graph = {".".join(p.relative_to(PACKAGE).with_suffix("").parts): _imports(p) for p in MODULES}
    modules = set(graph)
    edges = {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}

    def reach(start: str) -> set[str]:
        seen, todo = set(), list(edges[start])
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo += edges[node]
        return seen

    cycles = sorted(m for m in modules if m in reach(m))
    assert not cycles, f"modules in an import cycle: {', '.join(cycles)}"
