"""``python -m atcp.testing.packetdrill [-v] FILE_OR_DIR...``: run scripts, one line each.

Prints ``PASS path`` or ``FAIL path: reason`` per script and ``N passed, M failed`` last;
the exit status is 1 if any script failed (2 if none was found). ``-v`` shows each event
as it is played and every segment the stack sends.
"""

from __future__ import annotations

import argparse
import sys

from .runner import find_scripts, run_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atcp.testing.packetdrill",
                                     description="Play packetdrill-syntax scripts against "
                                                 "atcp's protocol core on a fake clock.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print each event and every segment the stack sends")
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR",
                        help="script files, or directories searched for *.pkt")
    args = parser.parse_args(argv)
    scripts = find_scripts(args.paths)
    if not scripts:
        print("no scripts found", file=sys.stderr)
        return 2
    passed = failed = 0
    for path in scripts:
        result = run_file(path, verbose=args.verbose)
        print(result, flush=True)
        if result.passed:
            passed += 1
        else:
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
