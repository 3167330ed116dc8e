"""The package installs as a wheel with attacks/ and defenses/ under robustkit, nothing top-level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_layout(tmp_path):
    pytest.importorskip("setuptools")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("robustkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"robustkit"}
    for required in (
        "robustkit/attacks/__init__.py",
        "robustkit/defenses/__init__.py",
        "robustkit/zoo/__init__.py",
        "robustkit/cli.py",
    ):
        assert required in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "robustkit = robustkit.__main__:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


def test_installed_subpackages_resolve():
    import robustkit.attacks
    import robustkit.defenses

    assert Path(robustkit.attacks.__file__).parent.name == "attacks"
    assert Path(robustkit.defenses.__file__).parent.name == "defenses"


def test_the_command_line_starts_without_pytorch():
    """The package and its command line load without PyTorch (it loads in the commands that
    need it): `robustkit --help` answers at once, and a Ctrl-C while PyTorch loads ends
    with the command group's one line and exit status 130, not a traceback from the import. The API still loads on first use."""
    code = (
        "import sys, robustkit.cli\n"
        "assert 'torch' not in sys.modules, 'torch loaded'\n"
        "import robustkit\n"
        "from robustkit import AttackResult, evaluate\n"
        "assert 'torch' in sys.modules and robustkit.Attack.__name__ == 'Attack'\n"
        "names = set(dir(robustkit))\n"
        "assert {'Attack', 'ThreatModel', 'load_dataset', 'results', 'attacks'} <= names\n"
        # tab completion offers the API, not what the package module imports for itself
        "assert not {'version', 'annotations', 'TYPE_CHECKING'} & names, names\n"
        # submodules are attributes, as when the package imported them all
        "assert robustkit.data.load_dataset is robustkit.load_dataset\n"
        "assert robustkit.modelcheck.__name__ == 'robustkit.modelcheck'\n"
        "assert not hasattr(robustkit, 'nope') and not hasattr(robustkit, '__wrapped__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "imports",
    [
        "import attacks, defenses, robustkit",  # the directories first
        "import robustkit.attacks, robustkit.defenses, attacks, defenses",  # the package first
        "import robustkit; robustkit.list_attacks(); robustkit.list_defenses(); "
        "import attacks, defenses",  # after the registries loaded
        "from attacks.pgd import PGD; from defenses import bit_depth; import robustkit",
    ],
)
def test_the_source_directories_imported_from_the_repository_root_are_the_package(imports):
    """In the repository root (a notebook started there, ``python -c``) ``import attacks`` finds
    the directory attacks/ before the installed robustkit.attacks; it is that package under a
    second name, with the same classes, not a second copy that registers every attack again
    (which failed with "attack 'apgd-ce' is already registered")."""
    code = (
        f"{imports}\n"
        "import sys, attacks, defenses, robustkit, robustkit.attacks, robustkit.defenses\n"
        "from attacks.pgd import PGD\n"
        "from robustkit.attacks.pgd import PGD as InstalledPGD\n"
        "assert attacks is robustkit.attacks and defenses is robustkit.defenses\n"
        "assert PGD is InstalledPGD and robustkit.ATTACKS.get('pgd') is PGD\n"
        "assert not [m for m in sys.modules if m.startswith(('attacks.', 'defenses.'))\n"
        "            and sys.modules[m] is not sys.modules['robustkit.' + m]]\n"
        "assert 'pgd' in robustkit.list_attacks() and 'bit-depth' in robustkit.list_defenses()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
