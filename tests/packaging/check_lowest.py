"""`make test-min`'s check that it tests what pyproject.toml declares: run in the lowest-versions
venv, every runtime dependency is installed at exactly its declared lower bound (a bound that
resolution had to lift, because another dependency needs more, would be a bound nobody tested).

python -m tests.packaging.check_lowest (with the venv's python, from the repository root)
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
LOWER_BOUND = re.compile(r"^([A-Za-z0-9_.\-]+)\s*>=\s*([^,;\s]+)")


def main() -> int:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    lifted = []
    for requirement in dependencies:
        match = LOWER_BOUND.match(requirement)
        if match is None:
            lifted.append(f"{requirement}: no lower bound")
            continue
        name, bound = match.groups()
        installed = version(name)
        print(f"  {name:<20} declared >= {bound:<9} installed {installed}")
        if installed != bound:
            lifted.append(f"{name}: declared >= {bound}, the lowest resolution installed {installed}")
    if lifted:
        print("make test-min: raise these bounds to what is tested:\n  " + "\n  ".join(lifted))
    return 1 if lifted else 0


if __name__ == "__main__":
    sys.exit(main())
