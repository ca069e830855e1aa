"""The house keeps its shape: imports run one way, no private name crosses a module, modules and
functions stay small, rendering never switches matplotlib's global backend."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cnnviz"

# Lower floors first; a module may import its own floor and those below it.
FLOORS = [
    ("version", "core"),
    ("results",),
    ("render",),
    ("model", "data"),
    ("maps", "attribution", "oip", "training", "parts"),
    ("report", "atlas", "serve"),
    ("jobs",),
    ("cli",),
]


def _floor(module: str) -> int:
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else ""
    for level, names in enumerate(FLOORS):
        if head in names:
            return level
    raise AssertionError(f"{module} is on no floor: add it to FLOORS")


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(p for p in rel.parts if p != "__init__")
        found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


def _imports(tree: ast.Module) -> list[ast.ImportFrom | ast.Import]:
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [alias.name for alias in node.names]


def test_imports_run_one_way():
    upward = []
    for name, tree in _modules().items():
        if name == "cnnviz":  # the package front door re-exports the API
            continue
        for node in _imports(tree):
            for target in _targets(node):
                if target.startswith("cnnviz.") and _floor(target) > _floor(name):
                    upward.append(f"{name} imports {target}")
    assert not upward


def test_compute_modules_do_not_import_the_oip_package():
    for name in ("cnnviz.maps.activations", "cnnviz.attribution"):
        targets = [t for node in _imports(_modules()[name]) for t in _targets(node)]
        assert not [t for t in targets if t.startswith("cnnviz.oip")], name


def test_no_private_name_is_imported_across_modules():
    crossing = [f"{name}: {alias.name} from {node.module}"
                for name, tree in _modules().items() for node in _imports(tree)
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnviz")
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.endswith("__")]
    assert not crossing


def test_modules_and_functions_stay_small():
    """≤ 400 lines a module, ≤ 60 a function body (a typer signature does not count)."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        if len(source.splitlines()) > 400:
            too_long.append(f"{path.name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
                length = node.end_lineno - node.body[0].lineno + 1
                if length > 60:
                    too_long.append(f"{path.name}:{node.lineno} {node.name}: {length} lines")
    assert not too_long


def test_rendering_never_switches_the_matplotlib_backend():
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        assert "matplotlib.use(" not in source and "import matplotlib.pyplot" not in source, path


def test_one_place_decides_the_default_data():
    """Only ``data.sources.data_for`` falls back to the bundled digits; everything else asks it
    (or ``bundled_fits``, its rule)."""
    deciders = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
                called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                literal = [a.value for a in node.args if isinstance(a, ast.Constant)]
                if (called == "load_mnist" and not node.args and not node.keywords) or \
                        (called in ("open_source", "load_dataset") and "bundled" in literal):
                    deciders.append(f"{name}: {called}")
    assert deciders == ["cnnviz.data.sources: open_source"]


def _layout_blocks() -> dict[str, str]:
    """docs/layout.md: each entry of cnnviz/ with the text that describes it."""
    import re

    page = (PACKAGE.parent / "docs" / "layout.md").read_text()
    layout = page.split("```")[1]
    block = layout.split("\nscripts/", 1)[0]
    blocks: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        head = re.match(r"  ([a-z_]+(?:\.py|/))(.*)", line)
        if head:
            current = head.group(1)
            blocks[current] = head.group(2)
        elif current:
            blocks[current] += " " + line.strip()
    return blocks


def test_the_readme_layout_is_the_tree():
    """docs/layout.md names every module and package of cnnviz/, and nothing else, and each
    package's entry names each of its modules."""
    import re

    blocks = _layout_blocks()
    tree = {p.name + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir()
            if p.name not in ("__init__.py", "__pycache__")}
    assert set(blocks) == tree
    unnamed = [f"{folder}{module.stem}" for folder in tree if folder.endswith("/")
               and folder != "assets/" for module in (PACKAGE / folder).glob("*.py")
               if module.stem not in ("__init__", "__main__")
               and not re.search(rf"\b{module.stem}\b", blocks[folder])]
    assert not unnamed


def test_no_module_lives_outside_a_package():
    """Every module is in a package of the floor plan, but the front door and the version."""
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "version.py"]
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages == {name for floor in FLOORS for name in floor} - {"version"}
