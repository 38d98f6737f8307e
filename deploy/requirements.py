"""Print the package's runtime requirements (with the given extras), one per line.

The Dockerfile installs these before it copies the code, so a change to the code reuses
the cached dependency layer; only pyproject.toml invalidates it. Self-references such as
``audit-archive[ui]`` are expanded, so the output holds third-party requirements only.
Usage: ``python deploy/requirements.py pyproject.toml deploy``.
"""

from __future__ import annotations

import re
import sys
import tomllib


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    optional = project.get("optional-dependencies", {})
    own = re.compile(rf"^{re.escape(project['name'])}\[([^\]]+)\]$")
    out: list[str] = []
    seen: set[str] = set()

    def add(items: list[str]) -> None:
        for item in items:
            match = own.match(item.replace(" ", ""))
            if match:
                for extra in match.group(1).split(","):
                    if extra not in seen:
                        seen.add(extra)
                        add(optional[extra])
            elif item not in out:
                out.append(item)

    add(project["dependencies"])
    for extra in extras:
        seen.add(extra)
        add(optional[extra])
    return out


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2:])))
