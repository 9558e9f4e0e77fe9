"""`make dist`'s checks of what it built: python -m tests.packaging.check_dist DIST_DIR VENV.

- one wheel and one sdist; the wheel holds the `durable_ext` package and its metadata and nothing
  else (no tests, bench, node_modules, sample app or test harness), every module of the source
  tree, `py.typed`, `openapi.json` (identical to docs/openapi.json) and the dashboard's files;
- the metadata a PyPI user reads: summary, README as description, license, classifiers, keywords,
  project URLs, the version of `durable_ext.__version__`, runtime dependencies as ranges;
- the sdist holds no node_modules, virtualenv or Azurite data;
- VENV, a fresh venv with only the wheel installed, imports durable_ext from its own
  site-packages, and the README's example app, served by that venv's `durable-ext start` against
  a private Azurite, runs `hello_cities` to completion.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

from durable_ext import __version__
from tests.azurite import AzuriteInstance
from tests.sample_app.host_process import LocalHostProcess, http, make_app_root, poll_status

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
# Path segments that must never reach a wheel: test suites and harnesses, benchmarks, the sample
# app, Node and Azurite files.
FOREIGN = re.compile(
    r"(^|/)(tests?|bench|functions_host|function_app(\.py)?|conftest\.py|node_modules|\.azurite|"
    r"__pycache__|\.venv)(/|$)"
)
SDIST_FOREIGN = re.compile(r"/(node_modules|\.venv|\.azurite|build|dist)/")
EXPECTED_OUTPUT = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
DASHBOARD_FILES = sorted(
    p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "durable_ext/dashboard/static").iterdir()
)
"""The dashboard's page, scripts and styles: package data, served from the installed package."""


class CheckFailedError(AssertionError):
    """A built artefact is not what it should be."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailedError(message)


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    check(len(found) == 1, f"expected one {pattern} in {folder}, found {[p.name for p in found]}")
    return found[0]


def check_wheel(wheel: Path) -> tuple[Message, int]:
    """The wheel's files and metadata; returns the metadata and the number of files."""
    dist_info = f"durable_ext-{__version__}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        shipped_spec = archive.read("durable_ext/openapi.json")
    check({n.split("/")[0] for n in names} == {"durable_ext", dist_info},
          f"top-level entries: {sorted({n.split('/')[0] for n in names})}")
    foreign = [n for n in names if FOREIGN.search(n)]
    check(not foreign, f"files that do not belong in the wheel: {foreign[:10]}")
    sources = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / "durable_ext").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    check(not sources - set(names), f"modules missing from the wheel: {sorted(sources - set(names))}")
    check("durable_ext/py.typed" in names, "py.typed is missing")
    missing_assets = set(DASHBOARD_FILES) - set(names)
    check(not missing_assets, f"dashboard files missing from the wheel: {sorted(missing_assets)}")
    check(shipped_spec == (REPO_ROOT / "docs" / "openapi.json").read_bytes(),
          "the wheel's openapi.json differs from docs/openapi.json")
    check_metadata(metadata)
    return metadata, len(names)


def check_metadata(metadata: Message) -> None:
    check(metadata["Name"] == "durable-ext", f"Name: {metadata['Name']}")
    check(metadata["Version"] == __version__,
          f"Version {metadata['Version']} != durable_ext.__version__ {__version__}")
    check(metadata["Summary"], "no Summary")
    check(metadata["License-Expression"] == "MIT", f"License-Expression: {metadata['License-Expression']}")
    check(metadata["Description-Content-Type"] == "text/markdown", "the README is not the description")
    check("Programming Language :: Python :: 3.11" in metadata.get_all("Classifier", []), "no classifiers")
    check(metadata["Keywords"], "no Keywords")
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL", []))
    check({"Documentation", "Changelog", "Source", "Issues"} <= set(urls), f"Project-URL: {urls}")
    runtime = [r for r in metadata.get_all("Requires-Dist", []) if "extra ==" not in r]
    check(runtime, "no runtime dependencies")
    pinned = [r for r in runtime if "==" in r or ">=" not in r]
    check(not pinned, f"runtime dependencies must be ranges with a lower bound: {pinned}")


def check_sdist(sdist: Path) -> int:
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    foreign = [n for n in names if SDIST_FOREIGN.search(n)]
    check(not foreign, f"files that do not belong in the sdist: {foreign[:10]}")
    for required in ("pyproject.toml", "README.md", "LICENSE", "durable_ext/py.typed", "durable_ext/openapi.json",
                     *DASHBOARD_FILES):
        check(any(n.endswith(f"/{required}") for n in names), f"{required} missing from the sdist")
    return len(names)


def check_fresh_venv(venv: Path, workdir: Path) -> str:
    """The venv imports durable_ext from its own site-packages, at the wheel's version."""
    probe = (
        "import json, importlib.metadata as m, durable_ext;"
        "print(json.dumps([durable_ext.__file__, durable_ext.__version__, m.version('durable-ext')]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=workdir, env=env,
                         check=True, capture_output=True, text=True).stdout
    location, version, dist_version = json.loads(out)
    check(Path(location).resolve().is_relative_to(venv.resolve()), f"durable_ext imported from {location}")
    check(version == dist_version == __version__, f"versions {version}, {dist_version}, {__version__}")
    return location


def run_readme_example(venv: Path, workdir: Path) -> list[str]:
    """The README's app under the venv's `durable-ext start`, against a private Azurite."""
    source = README.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    code = workdir / "src" / "function_app.py"
    code.parent.mkdir()
    code.write_text(source)
    with AzuriteInstance(workdir / "azurite", in_memory=True) as azurite:
        app_root = make_app_root(workdir / "app", code=[code], hub_name="ReadmeExample",
                                 connection_string=azurite.connection_string)
        host = LocalHostProcess(app_root)
        host.executable = venv / "bin" / "durable-ext"
        host.launch()
        try:
            host.wait_ready()
            started = http("POST", f"{host.base_url}/api/orchestrators/hello_cities")
            check(started.status == 202, f"start: {started.status} {started.text}")
            done = poll_status(started.json()["statusQueryGetUri"], timeout=60)
            status = done.json()
            check(status["runtimeStatus"] == "Completed" and status["output"] == EXPECTED_OUTPUT,
                  f"hello_cities ended {status}\n{host.log()[-3000:]}")
        finally:
            host.kill()
    return status["output"]


def main(dist: Path, venv: Path) -> None:
    wheel, sdist = only(dist, "*.whl"), only(dist, "*.tar.gz")
    _, wheel_files = check_wheel(wheel)
    sdist_files = check_sdist(sdist)
    with tempfile.TemporaryDirectory(prefix="dist-check-") as tmp:
        location = check_fresh_venv(venv, Path(tmp))
        output = run_readme_example(venv, Path(tmp))
    print(f"built {wheel} ({wheel.stat().st_size / 1e3:.0f} kB, {wheel_files} files: durable_ext/ "
          "with py.typed and openapi.json, no tests/bench/node_modules; metadata checked)")
    print(f"built {sdist} ({sdist.stat().st_size / 1e3:.0f} kB, {sdist_files} entries)")
    print(f"fresh venv {venv}: durable_ext {__version__} from {location}")
    print(f"README example (hello_cities) under its durable-ext start, against Azurite: {output}")


if __name__ == "__main__":
    try:
        main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
    except CheckFailedError as failure:
        sys.exit(f"make dist: {failure}")
