"""The import contract of LAYOUT.md rule 1, and the runtime naming no service.

Imports go one way: ``actors.runtime`` imports only the standard library and
third-party packages; ``actors.bus`` and ``actors.shared`` import the
runtime; a service imports the runtime, bus and shared, never another
service; ``web.common`` imports the runtime; ``web.<svc>`` imports
``web.common`` and its own service; nothing in ``actors/`` imports ``web``.
Checked by parsing every module (imports inside functions included).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ACTORS = ROOT / "actors"
WEB = ROOT / "http" / "web"
SHARED_PACKAGES = {"runtime", "bus", "shared"}


def _services() -> set[str]:
    return {
        p.name for p in ACTORS.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    } - SHARED_PACKAGES


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def _allowed(owner: tuple[str, str], module: str) -> bool:
    """May code of ``owner`` (("actors"|"web", package)) import ``module``?"""
    top, _, rest = module.partition(".")
    if top not in ("actors", "web"):
        return True  # standard library or third party
    package = rest.partition(".")[0]
    side, own = owner
    if side == "actors":
        if top == "web":
            return False
        if own == "runtime":
            return package == "runtime" or not rest
        if own in ("bus", "shared"):
            return package in ("runtime", own) or not rest
        return package in SHARED_PACKAGES | {own} or not rest
    if top == "web":
        return package in ("common", own) or not rest
    if own == "common":
        return package == "runtime"
    return package in SHARED_PACKAGES | {own}


def _modules():
    for path in sorted(ACTORS.rglob("*.py")):
        parts = path.relative_to(ACTORS).parts
        if len(parts) > 1:
            yield ("actors", parts[0]), path
    for path in sorted(WEB.rglob("*.py")):
        parts = path.relative_to(WEB).parts
        if len(parts) > 1:
            yield ("web", parts[0]), path


def violations(modules=None) -> list[str]:
    found = []
    for owner, path in modules or _modules():
        for line, module in _imports(path):
            if not _allowed(owner, module):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{where}:{line}: {'.'.join(owner)} must not import {module}")
    return found


def test_imports_go_one_way():
    assert not violations(), "\n".join(violations())


@pytest.mark.parametrize(
    "owner, module, allowed",
    [
        (("actors", "runtime"), "actors.grades.storage", False),
        (("actors", "runtime"), "web.common.app", False),
        (("actors", "bus"), "actors.grades.config", False),
        (("actors", "segments"), "actors.balances.store", False),
        (("actors", "segments"), "actors.runtime.pg", True),
        (("actors", "segments"), "actors.shared.luhn", True),
        (("web", "common"), "actors.grades.records", False),
        (("web", "common"), "actors.runtime.client", True),
        (("web", "segments"), "web.balances.app", False),
        (("web", "segments"), "actors.segments.store", True),
        (("web", "segments"), "actors.gophermart.store", False),
    ],
)
def test_the_contract_itself(owner, module, allowed):
    assert _allowed(owner, module) is allowed


def test_a_runtime_module_importing_a_service_is_caught(tmp_path):
    rogue = tmp_path / "rogue.py"
    rogue.write_text("import actors.grades\nfrom actors.grades.storage import StorageActor\n")
    found = violations([(("actors", "runtime"), rogue)])
    assert len(found) == 3 and "must not import actors.grades" in found[0]


def _code_words(path: Path) -> str:
    """A file's names and strings, without comments and docstrings."""
    words = []
    previous = tokenize.INDENT
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        docstring = token.type == tokenize.STRING and previous in (
            tokenize.INDENT,
            tokenize.NEWLINE,
            tokenize.NL,
            tokenize.DEDENT,
        )
        if token.type in (tokenize.NAME, tokenize.STRING) and not docstring:
            words.append(token.string)
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return " ".join(words)


@pytest.mark.parametrize("service", sorted(_services()))
def test_the_runtime_and_web_common_name_no_service(service):
    shared = [*(ACTORS / "runtime").rglob("*.py"), *(WEB / "common").rglob("*.py")]
    named = [str(p.relative_to(ROOT)) for p in shared if service in _code_words(p).lower()]
    assert not named, f"{service} is named in {named}"


def test_http_exposes_only_web():
    http = ROOT / "http"
    assert not (http / "__init__.py").exists(), "http/ must never be a package"
    assert sorted(p.name for p in http.iterdir() if p.name != "__pycache__") == ["web"]


def _test_modules() -> list[Path]:
    return sorted((ROOT / "tests").rglob("*.py"))


def test_no_test_imports_a_conftest_or_another_test_file():
    """Shared test code lives in named modules (app_client, fixtures_pg, writers...):
    importing a conftest runs its fixtures' module twice; importing a test file
    collects its tests into the importer."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in _test_modules()
        for line, module in _imports(path)
        if module.startswith("tests.")
        and any(part == "conftest" or part.startswith("test_") for part in module.split("."))
    ]
    assert not found, "\n".join(found)


POSTGRES_SERVICES = ("accrual", "balances", "gophermart", "segments")
SERVICE_FILES = ("config.py", "cli.py", "testing.py", "schema")
"""LAYOUT.md rule 2: what every PostgreSQL service has under actors/<svc>/ (its store is
store.py or a store/ package; messages.py only where an actor sits beside HTTP)."""
WEB_FILES = ("app.py", "resources.py", "validation.py", "openapi.py", "metrics.py")
DOCS_PAGE = {"accrual": "gophermart"}
"""accrual is documented with the service that calls it."""


def test_a_new_service_is_listed_here():
    assert set(POSTGRES_SERVICES) | {"grades"} == _services()


@pytest.mark.parametrize("service", POSTGRES_SERVICES)
def test_every_service_has_the_same_files(service):
    missing = [name for name in SERVICE_FILES if not (ACTORS / service / name).exists()]
    if not (ACTORS / service / "store.py").exists():
        if not (ACTORS / service / "store" / "__init__.py").exists():
            missing.append("store.py or store/")
    missing += [
        f"web/{service}/{name}" for name in WEB_FILES if not (WEB / service / name).exists()
    ]
    if not (ROOT / "docs" / f"{DOCS_PAGE.get(service, service)}.md").exists():
        missing.append("its docs/ page")
    assert not missing, f"{service} lacks {missing}"


@pytest.mark.parametrize("service", sorted(POSTGRES_SERVICES) + ["grades"])
def test_every_config_has_the_one_api(service):
    """``Config.from_env(environ, argv)`` and ``child_env()``: one config API."""
    import importlib

    config = importlib.import_module(f"actors.{service}.config").Config
    assert callable(getattr(config, "from_env", None)), f"{service}: no Config.from_env"
    assert callable(getattr(config, "child_env", None)), f"{service}: no Config.child_env"
