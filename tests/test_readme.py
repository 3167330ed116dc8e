"""The README's runnable snippets run as written (with fewer images): a renamed function or
parameter breaks the docs a user copies from, and nothing else would say so."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks in ``language``."""
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def shrunk(code: str, replacements: dict[str, str]) -> str:
    """``code`` with each of ``replacements`` made once (smaller sizes); a replacement that no
    longer matches says the snippet changed, rather than running it at full size."""
    for old, new in replacements.items():
        assert code.count(old) == 1, f"the README's Python snippet no longer holds {old!r}"
        code = code.replace(old, new)
    return code


@pytest.mark.slow
def test_the_python_api_snippet_runs(tmp_path, monkeypatch):
    """The notebook snippet under "Python API", on 4 images instead of 1,000 and CGBA with 100
    queries instead of 1,000 (its budgets scaled alike), in a results store of its own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("ROBUSTKIT_HOME", str(tmp_path))
    (code,) = [b for b in blocks("python") if "robustkit.get_attack" in b]
    smaller = {
        "n=1000)": "n=4)",
        "n=100,": "n=4,",
        "max_queries=1000)": "max_queries=100)",
        "x[:20], y[:20]": "x[:2], y[:2]",
        "[250, 500, 1000]": "[25, 50, 100]",
    }
    code = shrunk(code, smaller)
    namespace: dict = {}
    try:
        exec(compile(code, str(README), "exec"), namespace)
    finally:
        plt.close("all")
    assert namespace["report"]["n"] == 4
    assert namespace["res"].queries.tolist() == [100, 100]


def test_the_weights_listing_snippet_runs():
    """The one-liner under "How weights are found" that lists each zoo file and its URL."""
    (line,) = [
        ln
        for b in blocks("bash")
        for ln in b.splitlines()
        if ln.startswith("robustkit models") and " | python -c " in ln
    ]
    left, right = line.split(" | ", 1)
    listing = subprocess.run(
        [sys.executable, "-m", "robustkit", *shlex.split(left)[1:]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    args = shlex.split(right)
    assert args[:2] == ["python", "-c"], right
    out = subprocess.run(
        [sys.executable, "-c", args[2]], input=listing, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == 15  # the zoo's checkpoints, not torchvision's placeholders
    assert all(re.fullmatch(r"\S+ https://\S+", row) for row in out), out
