"""`python -m ringloop.probe`: what this kernel's io_uring supports.

Runs the ringloop-probe program installed with the package and passes its
arguments and exit status through (see `ringloop-probe --help`): a table by
default, `--json` for machines; exit status 0 when io_uring is usable.
"""

from __future__ import annotations

import os
import sys

from ._tools import find_tool


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        probe = find_tool("ringloop-probe")
    except FileNotFoundError as exc:
        print(f"ringloop.probe: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    # Replace this process, so that signals and the exit status are the
    # probe's own.
    os.execv(probe, [probe, *args])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
