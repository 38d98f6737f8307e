"""The variables are declared once (audit_archive/settings.py) and the README's tables and
.env.example follow the declaration: every declared variable documented, nothing
documented that is not declared, and the defaults they show are the declared ones."""

from __future__ import annotations

import re

import pytest

from audit_archive.settings import DEFAULTS, FILE_VARIABLES, SPEC_VARIABLES, VARIABLES
from audit_archive_tests.support.deploy_files import (
    REPO,
    env_example,
    readme_variables,
    secret_names,
)

# .env.example is the compose deployment's: where it differs from the default, it names
# the bundled service (the minio service, and the S3 user its bucket-init creates).
COMPOSE_VALUES = {
    "AUDIT_COLD_ENDPOINT": "http://minio:9000",
    "AUDIT_COLD_ACCESS_KEY": "audit-archive",
}
_ARCHIVE_VARIABLE = re.compile(r"^(AUDIT_|ARCHIVE_|MONGODB_URI$)")


def archive_variables(names) -> set[str]:
    """The archive's own variables among ``names`` (not the dev tools', not X_FILE)."""
    return {
        n
        for n in names
        if _ARCHIVE_VARIABLE.match(n) and not n.startswith("AUDIT_DEV_") and not n.endswith("_FILE")
    }


def test_the_declaration_holds_the_contracts_variables() -> None:
    assert set(SPEC_VARIABLES) <= set(VARIABLES)
    assert set(DEFAULTS) == set(VARIABLES)


def test_the_readme_documents_exactly_the_declared_variables() -> None:
    documented = readme_variables()
    assert set(VARIABLES) - set(documented) == set(), "declared but not in the README's tables"
    assert archive_variables(documented) - set(VARIABLES) == set(), "documented, not declared"


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_the_readme_shows_the_declared_default(name: str) -> None:
    """A default is shown as code (`90`); a variable without one (empty, none, required,
    derived) is described in words, never as a value."""
    cell = readme_variables()[name]
    if DEFAULTS[name]:
        assert cell == f"`{DEFAULTS[name]}`", (
            f"{name}: README says {cell}, declared {DEFAULTS[name]!r}"
        )
    else:
        assert cell and not cell.startswith("`"), f"{name}: README shows {cell} as its default"


def test_env_example_sets_exactly_the_declared_variables() -> None:
    example = env_example()
    assert set(VARIABLES) - set(example) == set(), "declared but not in .env.example"
    assert archive_variables(example) - set(VARIABLES) == set(), "in .env.example, not declared"


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_env_example_holds_the_declared_default(name: str) -> None:
    """Secrets are empty placeholders; the compose values are named above; every other
    variable holds its default, so the example shows what an unset variable means."""
    value = env_example()[name]
    if name in secret_names():
        assert value == "", name
    else:
        assert value == COMPOSE_VALUES.get(name, DEFAULTS[name]), name


def test_every_secret_file_variable_is_documented() -> None:
    """The X_FILE form of each secret or credential is named where operators look for it."""
    security = (REPO / "docs" / "security.md").read_text()
    for page, text in (("docs/security.md", security), (".env.example", env_text())):
        for name in FILE_VARIABLES:
            assert f"{name}_FILE" in text, f"{page} does not name {name}_FILE"
    assert "_FILE" in (REPO / "README.md").read_text()


def env_text() -> str:
    return (REPO / ".env.example").read_text()
