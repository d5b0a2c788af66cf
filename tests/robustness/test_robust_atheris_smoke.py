"""The atheris target (atheris_target.py) run on seeded random inputs without atheris, so
that it keeps working where atheris is not installed; the real fuzzing is a documented
command (see the target's docstring)."""

from __future__ import annotations

import random

import pytest

from atheris_target import TestOneInput


@pytest.mark.parametrize("seed", range(4))
def test_target_holds_its_invariants_on_random_inputs(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        TestOneInput(rng.randbytes(rng.randrange(0, 400)))


def test_target_accepts_empty_and_extreme_inputs() -> None:
    for data in (b"", b"\x00" * 300, b"\xff" * 300, bytes(range(256)) * 2):
        TestOneInput(data)
