"""No container command uses a program its image lacks (issue #16: bucket-init piped into
`grep`, which the mc image does not have, exited 127 and blocked the stack).

Docker is not available here, so each image's programs are listed below with the source
they were read from; the archive's own image is derived from what the Dockerfile installs.
Every program in every entrypoint, command and health check (shell scripts split into
their simple commands) must be in its image's list or be a shell builtin.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import pytest

from audit_archive_tests.support.deploy_files import (
    REPO,
    SHELL_WORDS,
    compose_file,
    container_programs,
    filled_example,
    interpolate,
    shell_commands,
)

SILO = "pgsty/silo:RELEASE.2026-09-03T13-18-01Z"
# Programs on PATH (or by the path used) in each pinned image, read from its build files.
IMAGE_PROGRAMS: dict[str, set[str]] = {
    # pgsty/silo Dockerfile.goreleaser (the image of every release): FROM ubi9/ubi-micro,
    # COPY silo /usr/bin/silo, mcli and a static curl from the build stage,
    # docker-entrypoint.sh, `ln -sf mcli /usr/bin/mc`. UBI micro has bash and
    # coreutils-single but no grep, sed, awk or find (minio/mc#4764, #4469).
    SILO: {"/bin/sh", "sh", "bash", "silo", "mcli", "mc", "curl", "docker-entrypoint.sh"},
    # docker-library/mongo 7.0/Dockerfile: FROM ubuntu:jammy (bash, coreutils), apt jq,
    # numactl, procps; gosu; mongodb-org(-server,-shell,-tools) 7.0.28: mongod, mongosh;
    # docker-entrypoint.sh in /usr/local/bin.
    "mongo:7.0.28": {
        "sh", "bash", "head", "base64", "chmod", "chown", "cat", "jq", "numactl", "ps",
        "gosu", "mongod", "mongos", "mongosh", "docker-entrypoint.sh",
    },
    # docker-library/postgres 16/bookworm/Dockerfile: FROM debian:bookworm-slim (sh, bash,
    # coreutils), gosu, postgresql-16 on PATH (/usr/lib/postgresql/16/bin: postgres,
    # pg_isready, psql, ...), docker-entrypoint.sh.
    "postgres:16.11-bookworm": {
        "sh", "bash", "gosu", "postgres", "pg_isready", "psql", "pg_ctl", "docker-entrypoint.sh",
    },
}  # fmt: skip
ARCHIVE_IMAGE = "audit-archive:0.1.0"
# python:3.11.14-slim-bookworm (docker-library/python 3.11/slim-bookworm/Dockerfile):
# debian:bookworm-slim's sh (also as /bin/sh) and bash, python/python3 and pip in
# /usr/local/bin.
PYTHON_BASE = {"/bin/sh", "sh", "bash", "python", "python3", "pip", "pip3"}


def archive_image_programs() -> set[str]:
    """The Python base's programs plus the console scripts of every requirement the
    Dockerfile installs (deploy/requirements.py) and of the package itself, read from
    the installed distributions' metadata."""
    out = set(PYTHON_BASE)
    listed = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "requirements.py"), "pyproject.toml", "deploy"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = [re.split(r"[<>=!;\[ ]", req, maxsplit=1)[0] for req in listed] + ["audit-archive"]
    for name in names:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            # Not in the test venv (dagster-postgres): its programs count as absent, which
            # can only make this check stricter.
            continue
        out |= {ep.name for ep in dist.entry_points if ep.group == "console_scripts"}
    return out


@pytest.fixture(scope="module")
def programs() -> dict[str, set[str]]:
    return {**IMAGE_PROGRAMS, ARCHIVE_IMAGE: archive_image_programs()}


def test_every_service_runs_a_pinned_image_whose_programs_are_listed(programs) -> None:
    compose = compose_file()
    for name, service in compose["services"].items():
        assert service["image"] in programs, f"{name}: list the programs of {service['image']}"


@pytest.mark.parametrize("name", sorted(compose_file()["services"]))
def test_no_container_command_uses_a_program_its_image_lacks(name: str, programs) -> None:
    service = interpolate(compose_file()["services"][name], filled_example())
    available = programs[service["image"]]
    used = container_programs(service)
    assert used, f"{name}: nothing found to check"
    missing = {(where, p) for where, p in used if p not in available and p not in SHELL_WORDS}
    assert not missing, f"{name} runs programs its image does not have: {sorted(missing)}"


def test_the_archive_image_has_the_dagster_commands_the_services_run(programs) -> None:
    # Derived, not listed: a dependency dropped from pyproject.toml fails here.
    assert {"dagster", "dagster-webserver", "dagster-daemon", "audit-archive"} <= programs[
        ARCHIVE_IMAGE
    ]


def test_the_shell_parser_finds_the_program_behind_pipes_and_fallbacks() -> None:
    # What the check above relies on: the original bucket-init fallback is caught.
    script = (
        'mc admin policy attach local p --user "$U" ||\n'
        '  mc admin user info local "$U" | grep -q p\n'
        'if [ -n "$X" ]; then LOCK=--with-lock; else LOCK=; fi\n'
        'exec docker-entrypoint.sh "$0" > /dev/null 2>&1\n'
    )
    assert shell_commands(script) == ["mc", "mc", "grep", "[", "docker-entrypoint.sh"]
    available = IMAGE_PROGRAMS[SILO]
    assert "grep" not in available
