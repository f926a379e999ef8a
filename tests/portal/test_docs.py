"""The documentation stays true to the code: README.md short, every link resolving, every
environment variable the settings read and every scheduled task listed in docs/operations.md.

No database: these tests read files (and the Celery app's configuration).
"""

import ast
import re
from pathlib import Path

import pytest

from portal.celery import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "README.md"
OPERATIONS = DOCS / "operations.md"
SETTINGS = ROOT / "portal" / "settings.py"
README_MAX_LINES = 150

PAGES = sorted([README, *DOCS.rglob("*.md")])
TOPIC_PAGES = [page for page in sorted(DOCS.glob("*.md")) if page != INDEX]

FENCED_CODE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
BACKTICKED_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")


def link_targets(markdown: str) -> list[str]:
    """The targets of the Markdown and HTML links in `markdown`, code left out."""
    text = INLINE_CODE.sub("", FENCED_CODE.sub("", markdown))
    return [
        match.group(1)
        for pattern in (INLINE_LINK, REFERENCE_LINK, HTML_LINK)
        for match in pattern.finditer(text)
    ]


def local_path(target: str) -> str | None:
    """The file part of a relative link; None for an external link or an anchor alone."""
    if SCHEME.match(target) or target.startswith(("#", "//")):
        return None
    return target.split("#", 1)[0].split("?", 1)[0] or None


def section(markdown: str, heading: str) -> str:
    """The text under the `## heading` line, up to the next heading of that level or above."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^#{{1,2}} |\Z)", markdown, re.M | re.S)
    assert match, f"docs/operations.md has no '## {heading}' section"
    return match.group(1)


def first_cells(markdown: str) -> list[str]:
    """The first cell of each table row in `markdown`."""
    return [line.split("|")[1] for line in markdown.splitlines() if line.startswith("|")]


def _is_os_attribute(node: ast.AST, *names: str) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        and node.attr in names
    )


def _string_constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def settings_environment_variables() -> set[str]:
    """Every name portal/settings.py reads from the environment: the literal first argument
    of a call to one of its helpers that read `os.environ` (directly or through another
    helper), of `os.environ.get` or `os.getenv`, and of `os.environ[...]`."""
    tree = ast.parse(SETTINGS.read_text(encoding="utf-8"))
    helpers = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    readers = {
        name
        for name, helper in helpers.items()
        if any(_is_os_attribute(node, "environ", "getenv") for node in ast.walk(helper))
    }
    while True:
        callers = {
            name
            for name, helper in helpers.items()
            if name not in readers
            and any(
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in readers
                for node in ast.walk(helper)
            )
        }
        if not callers:
            break
        readers |= callers

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            function = node.func
            reads = (isinstance(function, ast.Name) and function.id in readers) or (
                _is_os_attribute(function, "getenv")
                or (
                    isinstance(function, ast.Attribute)
                    and function.attr == "get"
                    and _is_os_attribute(function.value, "environ")
                )
            )
            name = _string_constant(node.args[0])
            if reads and name:
                names.add(name)
        elif isinstance(node, ast.Subscript) and _is_os_attribute(node.value, "environ"):
            name = _string_constant(node.slice)
            if name:
                names.add(name)
    return names


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move the detail "
        "to a page under docs/ and link to it"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_in_the_repository(page):
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        path = local_path(target)
        if path is None:
            continue
        base = ROOT if path.startswith("/") else page.parent
        resolved = (base / path.lstrip("/")).resolve()
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to what does not exist: {broken}"


def test_the_link_finder_finds_what_it_should():
    markdown = (
        'See [the API](api.md#errors) and ![a picture](images/a.png "title").\n'
        "[ref]: ../Makefile\n"
        '<img src="images/b.svg">\n'
        "`[not a link](code.md)`\n"
        "```\n[nor this](fenced.md)\n```\n"
        "[out](https://example.jp/x.md) [here](#top)\n"
    )
    targets = link_targets(markdown)
    assert targets == [
        "api.md#errors",
        "images/a.png",
        "https://example.jp/x.md",
        "#top",
        "../Makefile",
        "images/b.svg",
    ]
    assert [local_path(t) for t in targets] == [
        "api.md",
        "images/a.png",
        None,
        None,
        "../Makefile",
        "images/b.svg",
    ]


def test_every_environment_variable_the_settings_read_is_in_the_operations_table():
    names = settings_environment_variables()
    # The parser still understands portal/settings.py (a renamed helper would find nothing).
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= names, names

    table = section(OPERATIONS.read_text(encoding="utf-8"), "Environment variables")
    listed = {name for cell in first_cells(table) for name in BACKTICKED_NAME.findall(cell)}
    missing = sorted(names - listed)
    assert not missing, (
        "portal/settings.py reads these, but docs/operations.md's table of environment "
        f"variables has no row for them (name, default, meaning): {missing}"
    )
    unknown = sorted(listed - names)
    assert not unknown, (
        f"docs/operations.md's table lists variables portal/settings.py does not read: {unknown}"
    )


def test_every_scheduled_task_is_in_the_operations_beat_schedule():
    schedule = app.conf.beat_schedule
    assert schedule, "the Celery app has no beat schedule"
    text = section(OPERATIONS.read_text(encoding="utf-8"), "The beat schedule")
    missing = sorted(
        entry["task"] for entry in schedule.values() if f"`{entry['task']}`" not in text
    )
    assert not missing, f"docs/operations.md's beat schedule does not list: {missing}"


def test_every_page_under_docs_is_in_the_index():
    index = INDEX.read_text(encoding="utf-8")
    linked = {local_path(target) for target in link_targets(index)}
    missing = [page.name for page in TOPIC_PAGES if page.name not in linked]
    assert not missing, f"docs/README.md does not list: {missing}"


@pytest.mark.parametrize("page", TOPIC_PAGES, ids=lambda page: page.name)
def test_every_page_says_whom_it_is_for(page):
    opening = page.read_text(encoding="utf-8").split("\n\n", 2)[:2]
    assert any(paragraph.startswith("**For**") for paragraph in opening), (
        f"docs/{page.name}: after the title, start with **For** and say who the page is for"
    )
