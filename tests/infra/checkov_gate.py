"""Run checkov on the Bicep in infra/ and fail unless it ran checks and none failed.

`make infra-check` runs this with checkov's own virtualenv (`.venv-checkov`; checkov's pins clash
with ours), so it uses the standard library only. checkov exits 0 when it finds nothing to check or
cannot parse a file; this gate also fails on zero passed checks and on any parsing error. Skips are
`//checkov:skip=ID:reason` comments next to the resource they apply to.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def run_checkov(checkov: str, directory: str) -> dict:
    """checkov's JSON report for the Bicep under `directory`, offline (no policy download)."""
    completed = subprocess.run(
        [
            checkov,
            "--framework",
            "bicep",
            "--directory",
            directory,
            "--skip-download",
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if not completed.stdout.strip():
        sys.exit(f"checkov printed no report (exit {completed.returncode}):\n{completed.stderr}")
    report = json.loads(completed.stdout)
    # One framework gives one report object; several give a list.
    return report[0] if isinstance(report, list) else report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkov", help="the checkov executable")
    parser.add_argument("directory", help="the folder holding the Bicep files")
    args = parser.parse_args()
    report = run_checkov(args.checkov, args.directory)
    # With nothing to check, checkov prints the bare summary.
    summary = report.get("summary", report)
    results = report.get("results", {})
    for failed in results.get("failed_checks", []):
        print(
            f"FAILED {failed['check_id']} {failed['check_name']}: {failed['resource']} "
            f"({failed['file_path']}:{failed['file_line_range'][0]})"
        )
    for error in results.get("parsing_errors", []):
        print(f"PARSING ERROR {error}")
    print(
        f"checkov bicep: {summary['passed']} checks passed, {summary['failed']} failing, "
        f"{summary['skipped']} skipped with a reason in place, {summary['parsing_errors']} "
        f"files unparsed, {summary['resource_count']} resources"
    )
    if summary["failed"] or summary["parsing_errors"]:
        return 1
    if not summary["passed"]:
        print("checkov ran no check: nothing was validated")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
