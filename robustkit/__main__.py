"""The ``robustkit`` command's entry point (also ``python -m robustkit``).

It loads the command line itself, so that a Ctrl-C while it loads (click, the registries,
importlib.metadata: about 0.1 s) ends as one line and exit status 130 instead of a traceback from
the middle of an import. Importing the package before that loads only ``robustkit.errors`` (see
``robustkit/__init__.py``), so what is left unguarded is Python's own start. Once the command
runs, the commands that store results say what is stored and how to resume, and any other Ctrl-C
ends with one line and exit status 130 (``robustkit.cli.RobustkitGroup``).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Load :mod:`robustkit.cli` and run it."""
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted while starting; nothing was run\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
