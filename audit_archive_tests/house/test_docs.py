"""The documentation keeps up with the code: every sub-command of the audit-archive command
and every variable (the data contract's, SPEC section 5, and the project's own) is named in
the README or a page of docs/, every relative link resolves to a file and, where it names
one, a heading, and the README stays a page a newcomer reads in five minutes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import click
import pytest

from audit_archive.cli import cli
from audit_archive.settings import DEFAULTS, SPEC_VARIABLES

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250  # issue 12: "at most ~250 lines"
# The pages issue 12 asks for; the README's "Where to go next" leads to each.
DOC_PAGES = (
    "format.md",
    "operations.md",
    "verification.md",
    "security.md",
    "reliability.md",
    "performance.md",
    "development.md",
)

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# A repository file named in the text: `audit_archive/timing.py`, `deploy/dagster.yaml`.
_REPO_FILE = re.compile(
    r"(?<![\w/.-])((?:audit_archive\w*|benchmarks|scripts|deploy|docs)/[\w/.-]+\.(?:py|ya?ml|png|md))\b"
)
# A test file named by its name alone: `test_chaos.py` (its folder left to the reader).
_TEST_FILE = re.compile(r"(?<![\w/.-])(test_\w+\.py)\b")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def all_docs() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def sub_commands() -> dict[str, click.Command]:
    """The sub-commands of the real command group, by name."""
    return dict(cli.commands)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor, with GitHub's -1, -2 ... for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def relative_links(page: Path) -> list[str]:
    """Link targets outside code blocks and inline code that point into the repository."""
    text = _INLINE_CODE.sub("", _FENCE.sub("", page.read_text()))
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_every_sub_command_and_its_options_are_documented() -> None:
    docs = all_docs()
    commands = sub_commands()
    assert {"check", "verify", "archives", "restore", "prove", "check-proof", "search"} <= set(
        commands
    ), "the command group is read, not a copy of it"
    for name, command in commands.items():
        assert re.search(rf"`(audit-archive )?{re.escape(name)}[` ]", docs), (
            f"sub-command {name!r} is not documented in README.md or docs/"
        )
        for param in command.params:
            for option in [*param.opts, *param.secondary_opts]:
                if option.startswith("--"):
                    assert option in docs, f"{name} {option} is not documented"


@pytest.mark.parametrize("name", sorted({*SPEC_VARIABLES, *DEFAULTS}))
def test_every_variable_is_documented(name: str) -> None:
    assert f"`{name}`" in all_docs(), f"{name} is not documented in README.md or docs/"


def test_the_spec_variables_are_the_contracts() -> None:
    # The list the test above relies on is complete: SPEC section 5 has 20 names (the
    # witnesses' two since section 8), and the settings read every one of them except the
    # signed log's (SPEC section 7).
    assert len(set(SPEC_VARIABLES)) == len(SPEC_VARIABLES) == 20
    signed_log = {"AUDIT_LOG_SIGNING_KEY", "AUDIT_LOG_VERIFIER_KEY"}
    assert set(SPEC_VARIABLES) - signed_log <= set(DEFAULTS)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves_to_a_file_and_heading(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path, _, fragment = target.partition("#")
        file = (page.parent / unquote(path)).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(REPO)}")
        elif fragment and file.suffix == ".md" and unquote(fragment) not in anchors(file):
            broken.append(f"{target}: no heading #{fragment} in {file.relative_to(REPO)}")
    assert not broken, f"broken links in {page.relative_to(REPO)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_file_the_text_names_exists(page: Path) -> None:
    """Paths in the prose follow the code when it moves (the layout of issue 12)."""
    named = set(_REPO_FILE.findall(page.read_text()))
    missing = sorted(name for name in named if not (REPO / name).exists())
    assert not missing, f"{page.relative_to(REPO)} names files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_test_file_the_text_names_by_name_exists(page: Path) -> None:
    """A test named without its folder still names one that exists (tests move between
    folders; docs/development.md, Layout)."""
    tests = {p.name for p in (REPO / "audit_archive_tests").rglob("test_*.py")}
    missing = sorted(set(_TEST_FILE.findall(page.read_text())) - tests)
    assert not missing, f"{page.relative_to(REPO)} names tests that do not exist: {missing}"


def test_the_link_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## A `code` heading: here\n\n[ok](#a-code-heading-here) [bad](#nope)\n"
        "```\n[in a fence](#ignored)\n```\n`[inline](#ignored)` [web](https://example.com)\n"
    )
    assert relative_links(page) == ["#a-code-heading-here", "#nope"]
    assert anchors(page) == {"title", "a-code-heading-here"}


def test_the_readme_is_short_and_leads_to_the_pages_of_docs() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for name in DOC_PAGES:
        assert f"](docs/{name}" in text, f"README does not lead to docs/{name}"
