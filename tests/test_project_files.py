"""The project's own files keep their promises: every environment variable the code reads is in
the README's tables, and pyproject.toml carries an SPDX license string with a setuptools that
understands it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


NAME = r"([A-Z][A-Z0-9_]*[A-Z0-9])"
# The ways this codebase reads the environment. app/config.py's small helpers (`_bool("X", …)`)
# count too: they are os.environ reads with a parser.
READS = [
    re.compile(rf"os\.environ\.get\(\s*[\"']{NAME}[\"']"),
    re.compile(rf"os\.getenv\(\s*[\"']{NAME}[\"']"),
    re.compile(rf"os\.environ\[\s*[\"']{NAME}[\"']\s*\]"),
    re.compile(rf"[\"']{NAME}[\"']\s+(?:not\s+)?in\s+os\.environ"),
    re.compile(rf"envvar\s*=\s*[\"']{NAME}[\"']"),
]
CONFIG_HELPER_READ = re.compile(rf"\b_[a-z_]+\(\s*[\"']{NAME}[\"']")
# The operating system's own, read by a test to pass it on to a child process: not settings.
SYSTEM_VARIABLES = {"PATH", "HOME"}


def _sources() -> list[Path]:
    folders = ("app", "workers", "benchmarks", "tests")
    files = [p for folder in folders for p in (ROOT / folder).rglob("*.py")]
    return [*files, ROOT / "wsgi.py"]


def variables_read() -> dict[str, str]:
    """Each variable read, with one place that reads it."""
    found: dict[str, str] = {}
    for path in _sources():
        source = path.read_text()
        patterns = READS + ([CONFIG_HELPER_READ] if path.name == "config.py" else [])
        for pattern in patterns:
            for match in pattern.finditer(source):
                line = source.count("\n", 0, match.start()) + 1
                if match.group(1) not in SYSTEM_VARIABLES:
                    found.setdefault(match.group(1), f"{path.relative_to(ROOT)}:{line}")
    return found


def variables_documented() -> set[str]:
    """Names in backticks in the first column of the README's tables."""
    documented: set[str] = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            first_cell = line.split("|")[1]
            documented.update(re.findall(rf"`{NAME}`", first_cell))
    return documented


def test_the_scan_sees_the_reads_it_must_see() -> None:
    read = variables_read()
    # One of each kind, so a pattern that stops matching fails here rather than passing silently.
    for name in (
        "SECRET_KEY",
        "TRUST_PROXY_HEADERS",
        "PORT",
        "TEST_DATABASE_URL",
        "REDIS_URL",
        "BENCH_ADMIN_URL",
    ):
        assert name in read, name


def test_every_environment_variable_read_is_in_the_readme() -> None:
    missing = {
        name: where
        for name, where in variables_read().items()
        if name not in variables_documented()
    }
    assert not missing, "add a row to the README's configuration table for: " + ", ".join(
        f"{name} (read at {where})" for name, where in sorted(missing.items())
    )


def test_pyproject_uses_an_spdx_license_string() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "AGPL-3.0-or-later"
    # setuptools reads an SPDX string (PEP 639) from version 77 on.
    [setuptools] = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools.replace(" ", ""))
    assert minimum and int(minimum.group(1)) >= 77, setuptools


def test_the_readme_layout_names_every_folder_of_the_app() -> None:
    # A newcomer finds a feature's code from the folder names: the README's layout paragraph
    # must say what each one holds, and CONTRIBUTING.md which file shows the way to add to it.
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("Code layout") : readme.index("## Tenancy and roles")]
    folders = sorted(
        p.name for p in (ROOT / "app").iterdir() if p.is_dir() and not p.name.startswith("__")
    )
    missing = [name for name in folders if f"`{name}/`" not in layout]
    assert not missing, "name these folders of app/ in the README's layout paragraph: " + ", ".join(
        missing
    )
    assert (ROOT / "CONTRIBUTING.md").is_file()


def test_no_module_of_the_app_grows_past_450_lines() -> None:
    # A module says one thing; past ~450 lines it says several (CONTRIBUTING.md). Migrations
    # are data, written once: they are left out.
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "app").rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > 450
    }
    assert not too_long, f"split these along their seams: {too_long}"
