"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Repository root (this file lives in <root>/tests/conftest.py).
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared`` directory next to the repository root (external test material).

    When it is absent the requesting test is skipped, except on CI
    (environment variable ``CI == "true"``), where a missing directory is a
    setup error and the test fails instead.
    """
    path = REPO_ROOT.parent / "shared"
    if not path.is_dir():
        reason = f"shared test material not found at {path} (expected a sibling 'shared' directory of the repo)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; it is required when CI=true")
        pytest.skip(reason)
    return path
