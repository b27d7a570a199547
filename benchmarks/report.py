"""Render saved benchmark runs (``benchmarks/results/*.json``) as markdown tables.

    python -m benchmarks.report benchmarks/results/lp_bounds-20261201T001500Z.json
    python -m benchmarks.report --no-header FILE.json [FILE.json ...]

Each file is a run written by ``benchmarks.harness.write_rows``; the output is its header
line (machine, devices, load before / after, date), the table with the columns and
formats the script chose, and its notes: what ``benchmarks/RESULTS*.md`` quotes.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.harness import read_rows, render


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", help="JSON files written by benchmarks.harness")
    p.add_argument("--no-header", action="store_true", help="the table only")
    args = p.parse_args(argv)
    out = []
    for f in args.files:
        try:
            doc = read_rows(f)
        except (OSError, ValueError) as e:
            p.error(str(e))
        out.append((f"## {doc['name']}\n\n" if len(args.files) > 1 else "") + render(doc, not args.no_header))
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
