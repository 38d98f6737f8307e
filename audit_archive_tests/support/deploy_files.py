"""The deployment files read the way `docker compose` reads them, for the deploy tests.

Docker is not available where the tests run, so docker-compose.yml, .env.example and the
files under deploy/ are parsed here: interpolation with compose's operators (``$$`` is a
literal ``$``), the example .env, profiles, and the simple commands of a shell script.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from audit_archive_tests.support.harness import LOG_KEY

REPO = Path(__file__).resolve().parents[2]
CODE = "audit_archive_code"
DAGSTER_SERVICES = (CODE, "dagster_webserver", "dagster_daemon")
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def compose_file() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    """.env.example as compose reads it: NAME=value lines, comments skipped."""
    out: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            assert name.strip() not in out, f"{name} is set twice in .env.example"
            out[name.strip()] = value
    return out


def readme_variables() -> dict[str, str]:
    """The README's Configuration tables: each variable (first column; a row may name
    several) and its default cell as written."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for row in section.splitlines():
        if row.startswith("| `"):
            cells = [c.strip() for c in row.split("|")[1:-1]]
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                assert name not in out, f"{name} has two rows in the README"
                out[name] = cells[1]
    return out


def secret_names() -> set[str]:
    """Variables .env.example marks ``# SECRET`` (the line before, or two before)."""
    lines = (REPO / ".env.example").read_text().splitlines()
    out = set()
    for i, line in enumerate(lines):
        if line.startswith("# SECRET"):
            following = next(x for x in lines[i + 1 :] if not x.startswith("#"))
            out.add(following.partition("=")[0])
    return out


def mongodb_uri_template() -> str:
    """The MONGODB_URI .env.example tells the operator to write for the bundled mongo."""
    text = (REPO / ".env.example").read_text()
    [uri] = re.findall(r"^#\s+(mongodb://\S+)$", text, flags=re.MULTILINE)
    return uri


def filled_example(**extra: str) -> dict[str, str]:
    """The example with every secret set to a usable value, as an operator would, and
    MONGODB_URI written from its template."""
    env = env_example()
    for name in secret_names():
        env[name] = "s" * 40
    env["AUDIT_SIGNING_KEYS_PREVIOUS"] = ""
    env["AUDIT_LOG_SIGNING_KEY"] = LOG_KEY  # a signer key string, as `keygen` prints one
    env["MONGODB_URI"] = mongodb_uri_template().replace(
        "<MONGO_ARCHIVE_PASSWORD>", env["MONGO_ARCHIVE_PASSWORD"]
    )
    env.update(extra)
    return env


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """What `docker compose` makes of a value given .env (``$$`` is a literal ``$``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        current = env.get(name)
        if op in (":+", "+"):
            present = bool(current) if op == ":+" else current is not None
            return (arg or "") if present else ""
        if (op in (":-", ":?") and not current) or (op in ("-", "?") and current is None):
            if op.endswith("?"):
                raise AssertionError(f"compose would stop: {arg}")
            return arg or ""
        return current or ""

    parts = value.split("$$")
    return "$".join(_INTERPOLATION.sub(one, part) for part in parts)


def with_secret_files(
    service: dict[str, Any], compose: dict[str, Any], env: dict[str, str], folder: Path
) -> dict[str, str]:
    """The environment a service's process sees, given .env: its interpolated variables,
    and each X_FILE pointing at a real file in ``folder`` that holds what compose would
    mount at /run/secrets/<name> (the value of the secret's source variable)."""
    out = interpolate(service.get("environment") or {}, env)
    for name in service.get("secrets") or ():
        source = compose["secrets"][name]["environment"]
        path = folder / name
        path.write_text(env.get(source, ""))
        for variable, value in list(out.items()):
            if value == f"/run/secrets/{name}":
                out[variable] = str(path)
    return out


def used_variables() -> set[str]:
    text = (REPO / "docker-compose.yml").read_text().replace("$$", "")
    return {m[0] for m in _INTERPOLATION.findall(text)}


def active_services(compose: dict[str, Any], profiles: set[str]) -> dict[str, Any]:
    """The services compose runs with these profiles active (no profiles: always)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & profiles
    }


# -- shell -----------------------------------------------------------------------------------

# POSIX shell reserved words and the builtins the scripts may use (bash and dash have all).
SHELL_WORDS = {
    "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "case", "esac", "while",
    "until", "{", "}", "!", "[", "test", "set", "exec", "echo", "printf", "exit", "true",
    "false", "export", "read", ":", "cd", "eval", "return", "shift", "unset", "trap", "wait",
}  # fmt: skip
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
_REDIRECTS = {">", ">>", "<", "<<", ">&", "<&", "&>", "2>", "1>", ">|"}


def shell_commands(script: str) -> list[str]:
    """The programs a shell script runs: the first word of every simple command, with
    `exec` and `!` looked through; assignments, redirections and keywords skipped."""
    out: list[str] = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        at_start = True
        skip_next = False
        for token in lexer:
            if skip_next:  # the target of a redirection
                skip_next = False
                continue
            if token in _SEPARATORS:
                at_start = True
                continue
            if token in _REDIRECTS or re.fullmatch(r"\d?[<>]+&?\d*", token):
                skip_next = not re.fullmatch(r"\d?[<>]&\d", token)
                continue
            if not at_start:
                continue
            if token.startswith("$"):
                at_start = False
                continue  # runs what a variable holds ("$@": the service's command)
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token):
                continue  # an assignment before the command
            if token in ("then", "else", "elif", "do", "!", "{", "exec", "if", "while", "until"):
                continue  # the next word starts a command
            if token in ("fi", "done", "esac", "}"):
                continue  # closes a compound command; a separator or command follows
            if token == "for" or token == "case":
                at_start = False
                continue
            out.append(token)
            at_start = False
    return out


def container_programs(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, program) for everything a service's container runs: entrypoint, command
    and healthcheck, exec form or through a shell."""
    found: list[tuple[str, str]] = []

    def scripts(where: str, argv: list[str] | str | None) -> None:
        if argv is None:
            return
        if isinstance(argv, str):
            argv = shlex.split(argv)
        if not argv:
            return
        if argv[0] in ("/bin/sh", "sh", "bash", "/bin/bash") and "-c" in argv:
            found.append((where, argv[0]))
            script = argv[argv.index("-c") + 1]
            found.extend((where, p) for p in shell_commands(script))
        else:
            found.append((where, argv[0]))

    entrypoint = service.get("entrypoint")
    command = service.get("command")
    if isinstance(entrypoint, list) and entrypoint[-1:] == ["-c"] and isinstance(command, list):
        scripts("entrypoint+command", [*entrypoint, *command])
    else:
        scripts("entrypoint", entrypoint)
        if not (isinstance(entrypoint, list) and "-c" in entrypoint):
            scripts("command", command)
        elif command is not None and entrypoint[-1:] != ["-c"]:
            found.append(("command", str(command[0])))  # "$0": handed to the script
    check = (service.get("healthcheck") or {}).get("test")
    if check:
        if check[0] == "CMD":
            found.append(("healthcheck", check[1]))
        elif check[0] == "CMD-SHELL":
            found.append(("healthcheck", "sh"))
            found.extend(("healthcheck", p) for p in shell_commands(" ".join(check[1:])))
    return found
