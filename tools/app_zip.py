"""Build the deployable zip of the sample function app (`make package`).

What `func azure functionapp publish --no-build` / zip deploy uploads: the app root's files that
`.funcignore` lets through, plus `.python_packages/lib/site-packages` with `requirements.txt`
installed for the platform's Python (Linux x86_64, CPython 3.11: binary wheels only, never this
machine's builds), `durable-ext` from the given wheel and everything else at the versions of
constraints.txt. The Python worker puts that folder on `sys.path`, so the platform runs no build.

    python -m tools.app_zip --wheel dist/durable_ext-X-py3-none-any.whl --out build/function-app.zip

The zip is deterministic (sorted entries, fixed timestamps): the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pathspec

REPO_ROOT = Path(__file__).resolve().parent.parent
SITE_PACKAGES = Path(".python_packages/lib/site-packages")
# The Functions Python 3.11 images are Debian (glibc >= 2.31): every manylinux tag up to 2_28 runs
# there. pip takes an explicit --platform literally (no older tags implied), so all are listed.
MANYLINUX = ("manylinux_2_28", "manylinux_2_24", "manylinux_2_17", "manylinux2014", "manylinux2010",
             "manylinux_2_5", "manylinux1")
PLATFORM = (
    *(arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_x86_64")),
    "--implementation", "cp", "--python-version", "3.11", "--abi", "cp311", "--only-binary=:all:",
)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def app_files(root: Path) -> Iterator[Path]:
    """The files under `root` that `root/.funcignore` lets through, relative to `root`."""
    spec = pathspec.GitIgnoreSpec.from_lines((root / ".funcignore").read_text().splitlines())
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{(rel / d).as_posix()}/"))
        for name in sorted(files):
            if not spec.match_file((rel / name).as_posix()):
                yield rel / name


def install_requirements(root: Path, wheel: Path, target: Path) -> None:
    """pip-install requirements.txt (with `wheel` for durable-ext) into `target` for the platform."""
    command = [
        sys.executable, "-m", "pip", "install", "-qq", "--no-compile", "--target", str(target),
        *PLATFORM, "-c", str(REPO_ROOT / "constraints.txt"),
        "-r", str(root / "requirements.txt"), str(wheel),
    ]
    subprocess.run(command, check=True)


def write_zip(source: Path, out: Path) -> int:
    """Zip everything under `source` into `out`; the number of files."""
    paths = sorted(p for p in source.rglob("*") if p.is_file())
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(out)
    return len(paths)


def build(root: Path, wheel: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="app-zip-") as tmp:
        stage = Path(tmp)
        copied = list(app_files(root))
        for rel in copied:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, stage / rel)
        install_requirements(root, wheel, stage / SITE_PACKAGES)
        count = write_zip(stage, out)
    print(f"built {out} ({out.stat().st_size / 1e6:.1f} MB, {count} files)")
    print(f"  app files ({len(copied)}): {', '.join(p.as_posix() for p in copied)}")
    print(f"  {SITE_PACKAGES}/: requirements.txt + {wheel.name}, Linux x86_64 CPython 3.11 wheels")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.app_zip", description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", type=Path, required=True, help="the durable-ext wheel to install")
    parser.add_argument("--out", type=Path, required=True, help="the zip to write")
    parser.add_argument("--app-root", type=Path, default=REPO_ROOT, help="default: the repository root")
    args = parser.parse_args()
    build(args.app_root.resolve(), args.wheel.resolve(), args.out.resolve())


if __name__ == "__main__":
    main()
