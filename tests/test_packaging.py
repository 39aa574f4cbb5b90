"""Relais installed as a package, away from its checkout, as an operator deploys it.

A wheel is built from a copy of the sources (building in place would leave build/ behind),
installed without its dependencies into a folder of its own (this virtualenv has them), and
run from a directory that has nothing to do with the checkout: gunicorn must find the WSGI
entry point there, and local data must default to that directory's ./var, not site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What an operator's environment would not carry over from development or from this suite.
_NOT_INHERITED = ("RELAIS_", "DATABASE_URL", "MIGRATION_DATABASE_URL", "MEDIA_", "S3_", "REDIS_URL",
                  "TEST_", "API_BASE_URL", "PUBLIC_BASE_URL", "PYTHON")  # fmt: skip
_CANNOT_FETCH_BUILD_TOOLS = ("No matching distribution found", "Could not find a version")

_PROBE = """
import json, app, app.wsgi
from app.storage import make_storage
flask_app = app.wsgi.app
print(json.dumps({
    "package": app.__file__,
    "database_url": flask_app.config["DATABASE_URL"],
    "media_root": str(make_storage(flask_app.config).root),
    "healthz": flask_app.test_client().get("/healthz").status_code,
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("packaging")
    source = work / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("app", "workers"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"),
         str(source)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if built.returncode != 0:
        output = built.stdout + built.stderr
        if any(reason in output for reason in _CANNOT_FETCH_BUILD_TOOLS):
            pytest.skip(f"pip cannot fetch the build tools (setuptools) here: {output[-300:]}")
        pytest.fail(f"building the wheel failed:\n{output}")
    [wheel] = (work / "dist").glob("relais-*.whl")
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return site


def _run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_installed_package_runs_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "deploy"
    elsewhere.mkdir()
    probe = _run([sys.executable, "-c", _PROBE], installed, elsewhere)
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert Path(seen["package"]).resolve().is_relative_to(installed.resolve())
    here = elsewhere.resolve()
    assert seen["database_url"] == f"sqlite:///{here / 'var' / 'relais.db'}"
    assert Path(seen["media_root"]) == here / "var" / "media"
    assert seen["healthz"] == 200

    # gunicorn loads the packaged entry point (and exits: --check-config binds nothing).
    gunicorn = _run(
        [sys.executable, "-m", "gunicorn", "--check-config", "app.wsgi:app"], installed, elsewhere
    )
    assert gunicorn.returncode == 0, gunicorn.stdout + gunicorn.stderr
