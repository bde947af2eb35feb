"""Shared fixtures and paths for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "workflow" / "schemas"
SHARED = REPO.parent / "shared"


@pytest.fixture
def repo() -> Path:
    return REPO
