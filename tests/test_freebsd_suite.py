"""FreeBSD's TCP test suite (shared/tcp-testsuite) played against atcp's core.

One test per script, its id the script's path relative to the suite. Scripts listed in
tests/freebsd-known-failures.txt must still fail (when one passes, the list is out of date
and the test says so); every other script must pass. Without the shared directory the
suite is one test that skips, or fails when CI == "true" (the ``shared_dir`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from atcp.testing.packetdrill.runner import find_scripts, run_file

TESTS_DIR = Path(__file__).resolve().parent
KNOWN_FAILURES_FILE = TESTS_DIR / "freebsd-known-failures.txt"
# Where the shared_dir fixture looks, read here too so that collection can list the scripts.
SUITE_DIR = TESTS_DIR.parent.parent / "shared" / "tcp-testsuite"


def _known_failures() -> dict[str, str]:
    known: dict[str, str] = {}
    for number, line in enumerate(KNOWN_FAILURES_FILE.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        path, sep, reason = line.partition("#")
        known[path.strip()] = reason.strip() if sep else ""
    return known


KNOWN_FAILURES = _known_failures()
SCRIPTS = ([p.relative_to(SUITE_DIR).as_posix() for p in find_scripts([SUITE_DIR])]
           if SUITE_DIR.is_dir() else [])


def _suite(shared_dir: Path) -> Path:
    suite = shared_dir / "tcp-testsuite"
    if not suite.is_dir():
        pytest.fail(f"{suite} is missing from the shared directory")
    return suite


if SCRIPTS:
    @pytest.mark.parametrize("name", SCRIPTS)
    def test_freebsd_script(name: str, shared_dir: Path) -> None:
        result = run_file(_suite(shared_dir) / name, name=name)
        if name in KNOWN_FAILURES:
            assert not result.passed, (
                f"{name} passes now: remove it from {KNOWN_FAILURES_FILE.name} "
                f"(listed as: {KNOWN_FAILURES[name]})")
        else:
            assert result.passed, result.reason
else:
    def test_freebsd_suite(shared_dir: Path) -> None:
        _suite(shared_dir)
        pytest.fail(f"no scripts found under {SUITE_DIR}")


def test_known_failures_are_listed_properly(shared_dir: Path) -> None:
    """Every entry names a script of the suite, once, with a reason."""
    suite = _suite(shared_dir)
    lines = [line.partition("#")[0].strip()
             for line in KNOWN_FAILURES_FILE.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == len(set(lines)), "a script is listed twice"
    for name, reason in KNOWN_FAILURES.items():
        assert (suite / name).is_file(), f"{name} is not in the suite"
        assert reason, f"{name} is listed without a reason"
