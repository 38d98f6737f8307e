"""The floor plan stays readable: rules a newcomer relies on when reading the tree.

- Every module of the project is at most ~500 lines and every function at most ~80,
  so each fits in one reading.
- The data contract (``audit_archive/format``) is pure: no Dagster, no database or S3
  client, so it can be read and tested alone.
- Dagster stays in ``defs/`` and ``definitions.py``; the domain code never imports it,
  and the wiring uses only Dagster's public API (no ``dagster._...`` module: those change
  without notice between releases).
- The layers import downwards only (shared basics -> format -> configuration -> stores
  -> archive | audit -> defs -> cli and definitions), and the steps (``archive/``) and
  the readers (``audit/``) never import each other.
- Tests import support code and the project's public names, never another test module,
  ``conftest`` or a private (``_``) name.
- Tests live in folders that mirror the package (``audit_archive_tests/format/`` tests
  ``audit_archive/format/``), or in a cross-cutting folder that says what it holds; each
  folder is a package, so two test files may share a name in different folders.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CODE = REPO / "audit_archive"
TESTS = REPO / "audit_archive_tests"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


# The one module that extends Dagster where Dagster 1.13 has no public API: a run launcher
# (no RunLauncher base, run-worker arguments or worker command is exported; Dagster's own
# launchers use the same modules). dagster is pinned (pyproject) and test_launcher.py runs
# it; exactly these, nothing else.
PRIVATE_DAGSTER_ALLOWED = {
    "audit_archive/defs/launcher.py": {
        "dagster._core.launcher",
        "dagster._core.launcher.base",
        "dagster._grpc.types",
        "dagster._serdes",
        "dagster._cli.api",
    },
}


def is_private_dagster(module: str) -> bool:
    """``dagster._core...``, ``dagster_aws._...``: any underscore part under a Dagster package."""
    first, *rest = module.split(".")
    return first.startswith("dagster") and any(part.startswith("_") for part in rest)


def python_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py"))


def imported_modules(tree: ast.AST) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [alias.name for alias in node.names]))
    return out


@pytest.mark.parametrize(
    "path", python_files(CODE, REPO / "audit_archive_dev"), ids=lambda p: str(p.relative_to(REPO))
)
def test_modules_and_functions_fit_in_one_reading(path: Path) -> None:
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{path.name}: split it by concept"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: split into named steps: {long}"


@pytest.mark.parametrize("path", python_files(CODE / "format"), ids=lambda p: p.name)
def test_the_data_contract_is_pure(path: Path) -> None:
    forbidden = ("dagster", "pymongo", "boto3", "botocore", "audit_archive.stores")
    bad = [
        module
        for module, _ in imported_modules(ast.parse(path.read_text()))
        if module.split(".")[0] in forbidden or module.startswith(forbidden)
    ]
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize(
    "path",
    [p for p in python_files(CODE) if "defs" not in p.parts and p.name != "definitions.py"],
    ids=lambda p: str(p.relative_to(CODE)),
)
def test_only_the_dagster_wiring_imports_dagster(path: Path) -> None:
    bad = [
        module
        for module, _ in imported_modules(ast.parse(path.read_text()))
        if module.split(".")[0].startswith("dagster")
    ]
    assert not bad, f"{path.relative_to(CODE)} imports {bad}"


# Each top-level module or package of audit_archive and its layer: a module imports
# from its own layer or below, never above (and archive/audit, one layer, not each other).
LAYERS: dict[str, int] = {
    "__init__": 0,
    "errors": 0,
    "redact": 0,
    "timing": 0,
    "progress": 0,
    "format": 1,
    "environment": 2,
    "settings": 2,
    "stores": 3,
    "archive": 4,
    "audit": 4,
    "witness": 4,  # the witness server the project ships (SPEC 8): a service of its own
    "defs": 5,
    "cli": 6,
    "definitions": 6,
}
# One layer, none imports another: the steps, the readers and the witness server.
APART = {
    frozenset(pair) for pair in (("archive", "audit"), ("archive", "witness"), ("audit", "witness"))
}


def top_level(module: str, name: str = "") -> str | None:
    """The top-level module or package of audit_archive an import names (None when it
    is not the project's): ``from audit_archive import timing`` names ``timing``."""
    parts = module.split(".")
    if parts[0] != "audit_archive":
        return None
    if len(parts) > 1:
        return parts[1]
    return name or "__init__"


def layer_violations(importer: str, imports: list[tuple[str, list[str]]]) -> list[str]:
    """The imports of a module of ``importer`` (a top-level name) that point upwards,
    or across to a sibling it must keep apart from."""
    bad = []
    for module, names in imports:
        for name in names or [""]:
            imported = top_level(module, name)
            if imported is None or imported == importer:
                continue
            if LAYERS[imported] > LAYERS[importer] or {importer, imported} in APART:
                bad.append(f"{importer} -> {imported} ({module})")
    return sorted(set(bad))


def test_every_top_level_module_has_a_layer() -> None:
    names = {p.relative_to(CODE).parts[0].removesuffix(".py") for p in python_files(CODE)}
    assert names <= set(LAYERS), f"give these a layer in LAYERS: {names - set(LAYERS)}"


@pytest.mark.parametrize("path", python_files(CODE), ids=lambda p: str(p.relative_to(CODE)))
def test_no_module_imports_from_a_layer_above_its_own(path: Path) -> None:
    importer = path.relative_to(CODE).parts[0].removesuffix(".py")
    bad = layer_violations(importer, imported_modules(ast.parse(path.read_text())))
    assert not bad, f"{path.relative_to(CODE)} imports upwards or across: {bad}"


@pytest.mark.parametrize(
    "path",
    python_files(CODE, REPO / "audit_archive_dev", REPO / "benchmarks"),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_the_project_uses_only_dagsters_public_api(path: Path) -> None:
    allowed = PRIVATE_DAGSTER_ALLOWED.get(str(path.relative_to(REPO)), set())
    private = [
        module
        for module, _ in imported_modules(ast.parse(path.read_text()))
        if is_private_dagster(module) and module not in allowed
    ]
    assert not private, f"{path.name} imports Dagster's private modules {private}"


@pytest.mark.parametrize("path", python_files(TESTS), ids=lambda p: str(p.relative_to(TESTS)))
def test_tests_import_neither_other_tests_nor_private_names(path: Path) -> None:
    problems = []
    for module, names in imported_modules(ast.parse(path.read_text())):
        last = module.rsplit(".", 1)[-1]
        if module.startswith("audit_archive_tests") and (
            last.startswith("test_") or last == "conftest"
        ):
            problems.append(module)
        if module.startswith(("audit_archive", "audit_archive_dev")):
            problems += [f"{module}.{n}" for n in names if n.startswith("_")]
    assert not problems, problems


# The test folders that are not a part of audit_archive (docs/development.md, Layout).
CROSS_CUTTING_TEST_FOLDERS = {"deploy", "reliability", "e2e", "dev", "house"}
# Beside the folders of tests: the fixtures, the tools the tests share and recorded data.
TEST_SUPPORT = {"__init__.py", "conftest.py", "support", "data", "__pycache__"}


def test_test_files_live_in_folders_that_mirror_the_package() -> None:
    entries = [p for p in TESTS.iterdir() if p.name not in TEST_SUPPORT and p.name[0] != "."]
    loose = sorted(p.name for p in entries if not p.is_dir())
    assert not loose, f"put these in the folder of what they test: {loose}"
    folders = {p.name for p in entries}
    assert folders <= set(LAYERS) | CROSS_CUTTING_TEST_FOLDERS, (
        f"name a test folder after a part of audit_archive (LAYERS) or list it as "
        f"cross-cutting: {sorted(folders - set(LAYERS) - CROSS_CUTTING_TEST_FOLDERS)}"
    )
    for name in sorted(folders):
        assert (TESTS / name / "__init__.py").is_file(), f"{name}/ needs an empty __init__.py"
        nested = [p for p in (TESTS / name).rglob("test_*.py") if p.parent != TESTS / name]
        assert not nested, f"one level of folders: {nested}"


def test_the_rules_catch_what_they_name(tmp_path: Path) -> None:
    """The checks above are not vacuous: each flags a file that breaks its rule."""
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    tree = ast.parse(f"def f():\n{long_body}\n")
    [func] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert func.end_lineno - func.lineno + 1 > MAX_FUNCTION_LINES
    imports = imported_modules(
        ast.parse("import dagster\nfrom audit_archive_tests.test_x import y\nfrom a import _b")
    )
    assert ("dagster", []) in imports
    assert ("audit_archive_tests.test_x", ["y"]) in imports
    assert ("a", ["_b"]) in imports
    layered = imported_modules(
        ast.parse(
            "from audit_archive.archive.results import Log\n"
            "from audit_archive import settings\n"
            "from audit_archive.defs.ops import x\n"
            "from audit_archive.format.jsonl import read_line\n"
            "import audit_archive.errors"
        )
    )
    assert layer_violations("audit", layered) == [
        "audit -> archive (audit_archive.archive.results)",
        "audit -> defs (audit_archive.defs.ops)",
    ]
    assert layer_violations("archive", [("audit_archive.audit.reader", ["PartStream"])])
    assert layer_violations("format", [("audit_archive", ["settings"])])
    assert not layer_violations("cli", layered)

    assert is_private_dagster("dagster._core.definitions.unresolved_asset_job_definition")
    assert not is_private_dagster("dagster_aws.s3") and not is_private_dagster("dagster")
