"""The image runs the C encoder: its build stage turns the package into a wheel with the
extension compiled, and refuses a wheel without it (deploy/wheel_check.py), since
`pip install` treats the extension as optional and would otherwise give the image the
slower Python path without a word."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from audit_archive_tests.support.deploy_files import REPO


@pytest.fixture(scope="module")
def wheel_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wheel_check", REPO / "deploy" / "wheel_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel(folder: Path, *names: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "audit_archive-0.1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, b"")
    return path


def test_the_wheel_pip_builds_holds_the_compiled_encoder(tmp_path: Path, wheel_check) -> None:
    # What stage 1 runs, on a copy of what it copies (no host-built .so among it).
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(
        REPO / "audit_archive",
        source / "audit_archive",
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(wheels), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [built] = wheels.glob("*.whl")
    assert wheel_check.compiled_encoder(built) is not None
    assert wheel_check.main(str(wheels)) == 0


def test_a_wheel_without_the_encoder_fails_the_image_build(tmp_path: Path, wheel_check) -> None:
    without = _wheel(tmp_path / "without", "audit_archive/format/nativecodec.py")
    assert wheel_check.compiled_encoder(without) is None
    assert wheel_check.main(str(without.parent)) == 1
    with_it = _wheel(
        tmp_path / "with", "audit_archive/format/_nativecodec.cpython-311-x86_64-linux-gnu.so"
    )
    assert wheel_check.main(str(with_it.parent)) == 0


def test_no_wheel_or_two_fail_the_image_build(tmp_path: Path, wheel_check) -> None:
    (tmp_path / "none").mkdir()
    assert wheel_check.main(str(tmp_path / "none")) == 1
    two = tmp_path / "two"
    _wheel(two, "audit_archive/format/_nativecodec.so")
    shutil.copy(
        two / "audit_archive-0.1.0-cp311-cp311-linux_x86_64.whl",
        two / "audit_archive-0.2.0-cp311-cp311-linux_x86_64.whl",
    )
    assert wheel_check.main(str(two)) == 1
