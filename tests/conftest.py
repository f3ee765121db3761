"""Shared fixtures: the real data in ../shared and the shipped weights bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MEDIA = SHARED / "media"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def media(shared: Path) -> Path:
    return shared / "media"


@pytest.fixture(scope="session")
def bfm(shared: Path) -> dict:
    from realtime.uv import load_bfm

    return load_bfm(shared / "bfm" / "bfm_noneck_uv.npz")


@pytest.fixture(scope="session")
def bundle():
    from realtime.weights import load_bundle

    return load_bundle()
