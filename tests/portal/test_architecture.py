"""The one-way arrows between the apps (docs/architecture.md), read from the code's imports:
a new import that points the wrong way fails here, not in a review."""

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)

# What each part may import from the project's own packages (besides itself).
CORE = ("portal.models", "portal.shared", "portal.tasks")
MAY_IMPORT = {
    "portal.shared": ("portal.models",),
    "audit": CORE,
    "consent": (*CORE, "audit"),
    "inferences": (*CORE, "audit", "consent"),
    # disclosure/admin/employers.py extends the portal's Employer admin with the requests
    "disclosure": (*CORE, "portal.admin", "audit", "consent", "inferences"),
    "backoffice": ("portal", "audit", "consent", "inferences", "disclosure"),
    "demo": ("portal", "audit", "consent", "inferences", "disclosure", "backoffice"),
}
# The project's wiring: only the portal's shell uses it, never an app.
WIRING = ("portal.settings", "portal.urls", "portal.api_urls", "portal.celery", "portal.wsgi")
OURS = ("portal", "audit", "consent", "inferences", "disclosure", "backoffice", "demo")


def _modules(part: str) -> list[Path]:
    folder = ROOT.joinpath(*part.split("."))
    return [path for path in folder.rglob("*.py") if "migrations" not in path.parts]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in OURS}


def _within(name: str, prefixes) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("part", MAY_IMPORT)
def test_each_part_imports_only_what_sits_below_it(part):
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules(part)
        for name in _imports(path)
        if not _within(name, (part, *MAY_IMPORT[part]))
    }
    assert not wrong, f"{part} may import only {MAY_IMPORT[part]}:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize(
    "part", ["audit", "consent", "inferences", "disclosure", "backoffice", "demo"]
)
def test_no_app_imports_the_projects_wiring(part):
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules(part)
        for name in _imports(path)
        if _within(name, WIRING)
    }
    assert not wrong, "\n".join(sorted(wrong))


def test_the_portals_models_import_no_app():
    names = _imports(ROOT / "portal" / "models.py")
    assert {
        name for name in names if not _within(name, ("portal.models", "portal.shared"))
    } == set()


def test_the_checker_sees_a_wrong_import(tmp_path):
    module = tmp_path / "wrong.py"
    module.write_text("from disclosure.models import DataRequest\nimport consent.services\n")
    assert _imports(module) == {"disclosure.models.DataRequest", "consent.services"}
    assert not _within("disclosure.models.DataRequest", MAY_IMPORT["consent"])
