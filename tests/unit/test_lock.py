"""requirements.lock (what `make setup` and CI install, with --require-hashes) covers every
dependency that pyproject.toml names, pinned at the version pyproject pins: a dependency added
without `make lock` fails here, not at import time on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def locked(path: str = "requirements.lock") -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    text = (ROOT / path).read_text()
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if m := re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block):
            out[m[1].lower().replace("_", "-")] = (m[2], block.count("--hash=sha256:"))
    return out


def test_every_dependency_is_locked_with_hashes_at_its_pinned_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    lock = locked()
    assert lock, "requirements.lock is empty"
    for requirement in wanted:
        name = _name(requirement)
        assert name in lock, f"{name} is not in requirements.lock: run make lock"
        if pinned := re.search(r"==([^;\s]+)", requirement):
            assert lock[name][0] == pinned[1], f"{name}: run make lock"
    assert all(hashes > 0 for _, hashes in lock.values())
    assert "setuptools" in lock  # the build backend: installs use --no-build-isolation


def test_the_image_installs_the_runtime_dependencies_locked_at_the_same_versions() -> None:
    """The Dockerfile installs deploy/requirements-image.lock with --require-hashes: every
    runtime dependency (no dev or stack extra), at the version requirements.lock has."""
    image, lock = locked("deploy/requirements-image.lock"), locked()
    runtime = {
        _name(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    assert runtime <= set(image), f"not in the image lock: {runtime - set(image)}: run make lock"
    assert "setuptools" in image
    assert not {"pytest", "chdb-core", "mypy"} & set(image)
    for name, (version, hashes) in image.items():
        assert lock[name][0] == version, f"{name}: {version} in the image, {lock[name][0]} here"
        assert hashes > 0, name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes --no-deps -r deploy/requirements-image.lock" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
