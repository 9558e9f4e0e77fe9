"""docs/performance.md and docs/performance.png from bench/results.json.

``python -m bench.report [--results bench/results.json]`` rewrites both from an existing results
file (the suite calls `write` at its end). Everything in the report, the verdicts and the
"what bounds it" analysis included, is computed from the results; nothing is typed in by hand.
The work is split by purpose: bench/results.py reads and checks the results, bench/analysis.py
derives figures, bench/verdicts.py judges them, bench/markdown.py (with storage_sections.py and
engine_sections.py) writes the page, bench/chart.py draws the chart.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from . import results
from .chart import render_chart
from .markdown import render_markdown

__all__ = ["DEFAULT_CHART", "DEFAULT_MARKDOWN", "DEFAULT_RESULTS", "main", "write"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results.json"
DEFAULT_MARKDOWN = REPO_ROOT / "docs" / "performance.md"
DEFAULT_CHART = REPO_ROOT / "docs" / "performance.png"


def write(measured: results.Results, markdown: Path, chart: Path) -> None:
    """Write the report and its chart (the chart is linked by file name, next to the report)."""
    render_chart(measured, chart)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render_markdown(measured, chart.name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the performance report from results.")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN)
    parser.add_argument("--chart", type=Path, default=DEFAULT_CHART)
    args = parser.parse_args(argv)
    try:
        measured = results.load(args.results)
    except results.ResultsError as exc:
        parser.exit(1, f"{exc}\n")
    write(measured, args.markdown, args.chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
