"""The Dockerfile's check that the archive's wheel holds its compiled C encoder.

The extension is optional for `pip install` (a machine without a compiler still gets a
working package, on the Python path), so a wheel built without it is not an error to
pip; for the image it is: the image was meant to run the C encoder. Standard library
only: it runs in the build stage, where nothing else is installed.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

EXTENSION = "audit_archive/format/_nativecodec."


def compiled_encoder(wheel: Path) -> str | None:
    """The C encoder's file in the wheel, or None."""
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(EXTENSION) and name.endswith(".so"):
                return name
    return None


def main(folder: str) -> int:
    wheels = sorted(Path(folder).glob("audit_archive-*.whl"))
    if len(wheels) != 1:
        print(f"expected one audit_archive wheel in {folder}, found {len(wheels)}")
        return 1
    found = compiled_encoder(wheels[0])
    if found is None:
        print(f"{wheels[0].name} holds no compiled C encoder ({EXTENSION}*.so): was gcc found?")
        return 1
    print(f"{wheels[0].name}: {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
