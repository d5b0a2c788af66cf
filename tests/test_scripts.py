"""Every packetdrill-syntax script under tests/scripts/ must pass against atcp's core.

One test per ``*.pkt`` file (found recursively, so scripts may be grouped in
subdirectories); the test id is the path relative to tests/scripts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from atcp.testing.packetdrill.runner import find_scripts, run_file

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
SCRIPTS = [p.relative_to(SCRIPTS_DIR).as_posix() for p in find_scripts([SCRIPTS_DIR])]


@pytest.mark.parametrize("name", SCRIPTS)
def test_script(name: str) -> None:
    result = run_file(SCRIPTS_DIR / name, name=name)
    assert result.passed, result.reason
