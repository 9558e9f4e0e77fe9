"""`make package`'s check of the deployable zip: python -m tests.packaging.check_app_zip ZIP.

Unpacks the zip into a temp folder and checks its files (the app, `.python_packages/` with
durable_ext and its dependencies as Linux x86_64 CPython 3.11 builds; nothing `.funcignore` keeps
out). Then runs `tests.packaging.run_app_zip` in a bare venv (no packages of its own, so every
third-party import comes from the zip's `.python_packages/lib/site-packages`, which the Python
worker puts on `sys.path`), against a private Azurite: the fake Functions host imports and indexes
the app and runs an orchestration through its HTTP starter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

from tests.azurite import AzuriteInstance
from tests.packaging.check_dist import DASHBOARD_FILES, CheckFailedError, check
from tests.packaging.run_app_zip import SITE_PACKAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_FILES = {"host.json", "requirements.txt", "function_app.py", "function_app/__init__.py"}
REQUIRED_PACKAGES = ("durable_ext/__init__.py", "durable_ext/py.typed", "azure/functions/__init__.py",
                     "azure/storage/queue/__init__.py", "aiohttp/__init__.py", *DASHBOARD_FILES)
# Top-level entries .funcignore keeps out of the package.
EXCLUDED = {"tests", "bench", "docs", "infra", "tools", "node_modules", ".venv", ".azurite", ".git",
            "durable_ext", "local.settings.json", "pyproject.toml", "Makefile", "build", "dist"}
BINARY_TAGS = (".cpython-311-x86_64-linux-gnu.so", ".abi3.so")


def check_contents(names: list[str]) -> None:
    check(set(names) >= APP_FILES, f"app files missing: {sorted(APP_FILES - set(names))}")
    site = SITE_PACKAGES.as_posix()
    missing = [p for p in REQUIRED_PACKAGES if f"{site}/{p}" not in names]
    check(not missing, f"missing from {site}: {missing}")
    tops = {n.split("/")[0] for n in names}
    excluded = sorted(tops & EXCLUDED | {t for t in tops if t.startswith(".venv")})
    check(not excluded, f".funcignore should have kept these out: {excluded}")
    check(not any("__pycache__" in n for n in names), "__pycache__ in the zip")
    foreign = [n for n in names if n.endswith(".so") and not n.endswith(BINARY_TAGS)]
    check(not foreign, f"binaries not built for Linux x86_64 CPython 3.11: {foreign[:5]}")


def main(archive_path: Path) -> None:
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        check_contents(names)
        with tempfile.TemporaryDirectory(prefix="app-zip-check-") as tmp:
            work = Path(tmp)
            archive.extractall(work / "app")
            venv.create(work / "bare", with_pip=False)
            with AzuriteInstance(work / "azurite", in_memory=True) as azurite:
                env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
                env["PYTHONPATH"] = os.pathsep.join([str(work / "app" / SITE_PACKAGES), str(REPO_ROOT)])
                result = subprocess.run(
                    [str(work / "bare" / "bin" / "python"), "-m", "tests.packaging.run_app_zip",
                     str(work / "app"), azurite.connection_string],
                    cwd=work, env=env, capture_output=True, text=True, timeout=180,
                )
    check(result.returncode == 0, f"the app did not run from the zip:\n{result.stdout}{result.stderr[-4000:]}")
    report = json.loads(result.stdout.splitlines()[-1])
    print(f"checked {archive_path}: {len(names)} files, nothing .funcignore excludes; unpacked, a bare "
          f"venv imported durable_ext {report['version']} from {SITE_PACKAGES}/")
    print(f"  fake Functions host indexed {len(report['functions'])} functions "
          f"({', '.join(report['functions'])})")
    print(f"  POST /api/orchestrators/hello_sequence/wait against Azurite: {report['output']}")


if __name__ == "__main__":
    try:
        main(Path(sys.argv[1]))
    except CheckFailedError as failure:
        sys.exit(f"make package: {failure}")
