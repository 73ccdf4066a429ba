"""The package's shape, checked so it stays so: no import cycles, no module over 400 lines, no
private names imported across modules, click only in the CLI layer."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "planner"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, imported name or None, line) for every import, in functions too (a lazy import is
    still a dependency); `if TYPE_CHECKING:` blocks are annotations only and do not count."""
    found: list[tuple[str, str | None, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, None, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.extend((child.module, alias.name, child.lineno) for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the planner modules importing it runs (a submodule's packages run first)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for module, imported, _ in imports_of(path):
            targets = [f"{module}.{imported}", module] if imported else [module]
            target = next((t for t in targets if t in MODULES), None)
            if target is None:
                continue
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                dependency = ".".join(parts[:i])
                # a module's own packages are running already when it is imported
                if dependency in MODULES and dependency != name and not name.startswith(dependency + "."):
                    graph[name].add(dependency)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    # the check itself must be able to fail
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    graph = import_graph()
    graph["planner.errors"].add("planner.costing.plan")  # errors importing the planner: a cycle through plan
    assert any("planner.errors" in c and "planner.costing.plan" in c for c in cycles(graph))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_400_lines(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name]}: {lines} lines; split it by concept"


def test_no_private_names_imported_across_modules():
    offenders = []
    for name, path in MODULES.items():
        for module, imported, line in imports_of(path):
            if module.startswith("planner") and imported and imported.startswith("_") and not imported.startswith("__"):
                offenders.append(f"{path}:{line}: {module}.{imported}")
        source = path.read_text()
        tree = ast.parse(source)
        aliases = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   and node.module and node.module.startswith("planner") for alias in node.names}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offenders.append(f"{path}:{node.lineno}: {node.value.id}.{node.attr}")
    assert offenders == []


def test_only_the_cli_imports_click():
    offenders = [f"{path}:{line}" for name, path in MODULES.items() if not name.startswith("planner.cli")
                 for module, _, line in imports_of(path) if module.split(".")[0] == "click"]
    assert offenders == []


def test_one_list_of_dtypes_everywhere():
    import typing

    from planner.catalog.schema import DTYPES, Dtype
    from planner.cli.plan import plan
    from planner.cli.scaling import scaling
    from planner.costing.plan import PlanRequest
    from planner.grant.proposal import Proposal
    from planner.sweep.spec import SweepSpec

    assert set(DTYPES) == set(typing.get_args(Dtype))
    for command in (plan, scaling):
        option = next(p for p in command.params if p.name == "dtype")
        assert tuple(option.type.choices) == DTYPES, command.name
    for model in (PlanRequest, Proposal, SweepSpec):
        assert set(typing.get_args(model.model_fields["dtype"].annotation)) == set(DTYPES), model.__name__


def test_the_catalog_option_names_every_kind():
    from planner.catalog import KINDS
    from planner.cli import cli

    text = next(p for p in cli.params if p.name == "catalog").help
    assert all(f"{kind}/" in text for kind in KINDS), text
