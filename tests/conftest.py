"""Shared test set-up: real data and weights from ../shared beside the checkout unless the
environment already points elsewhere, and a cache of loaded zoo models."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
os.environ.setdefault("ROBUSTKIT_DATA", str(SHARED / "data"))
os.environ.setdefault("ROBUSTKIT_WEIGHTS", str(SHARED / "models"))
# A relative directory (ROBUSTKIT_DATA=../shared/data make test) means from where the tests
# started: some tests, and the example notebook, run in another directory.
for _key in ("ROBUSTKIT_DATA", "ROBUSTKIT_WEIGHTS"):
    os.environ[_key] = str(Path(os.environ[_key]).expanduser().absolute())
#: The directory of the real checkpoints the tests use (``$ROBUSTKIT_WEIGHTS`` where it is set:
#: ``SHARED / "models"`` was missing for a checkout elsewhere, e.g. a git worktree).
WEIGHTS = Path(os.environ["ROBUSTKIT_WEIGHTS"])
# Results stores of the tests never land in the user's own store.
os.environ["ROBUSTKIT_HOME"] = tempfile.mkdtemp(prefix="robustkit-tests-")


@pytest.fixture(scope="session")
def zoo_model():
    """``zoo_model(name)`` loads a zoo model on the CPU once per test session."""
    import robustkit

    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = robustkit.load_model(name, device="cpu")
        return cache[name]

    return get
