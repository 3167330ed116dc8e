"""How the user names things in robustkit's one-line errors: the command line's options
(``--db``, ``--eps 0.1``) or, from Python, the arguments and RunConfig fields (``db=``,
``eps=0.1``). The store, the runner and the checks they call take a :class:`Naming`; the
CLI's is the default, ``run_evaluation`` and ``results.open`` pass :data:`PYTHON`. The
library functions a run calls (``load_model``, ``load_dataset``, ``resolve_device``, the model
check of ``evaluate`` and the attacks) name their own arguments by default and take the
run's :class:`Naming` from the runner, so the CLI's errors name its options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Naming:
    """How the user names the store's path and a run again, for the store's one-line errors
    and the runner's advice on resuming: on the command line (:data:`COMMAND_LINE`, the
    default) the ``--db`` and ``--fresh`` options and the command, from Python
    (:data:`PYTHON`) the arguments of ``run_evaluation`` and ``results.open`` (``rr.open("/tmp")``
    said "pass a file as --db"), and a run's settings likewise (:meth:`Naming.setting`)."""

    db: str  # the store's path: "pass another {db}"
    fresh: str  # starting a run over: "rerun ... without {fresh}"
    command: str  # what is run again: "rerun the same {command}"
    first: str  # what makes a store that is missing: "no results store at PATH; {first}"
    #: whether a run's settings are the CLI's options (``--eps 0.1``), else the fields of
    #: RunConfig (``eps=0.1``): ``RunConfig(eps=0.1)`` was told "drop --eps"
    options: bool = False

    def setting(self, name: str, value: Any = None) -> str:
        """The RunConfig field ``name``, set to ``value`` where one is given, as the user sets
        it: ``--eps 0.1``, ``--targeted``, ``--data`` on the command line, ``eps=0.1``,
        ``targeted=True``, ``dataset=`` from Python."""
        if not self.options:
            return f"{name}=" if value is None else f"{name}={value!r}"
        option = _OPTIONS.get(name, "--" + name.replace("_", "-"))
        return option if value is None or isinstance(value, bool) else f"{option} {value}"

    def dropped(self, name: str, value: Any) -> str:
        """What to drop to unset the RunConfig field ``name`` set to ``value``: the option on
        the command line (``drop --eps``), the field as set from Python (``drop eps=0.1``)."""
        return self.setting(name, None if self.options else value)

    def field(self, name: str) -> str:
        """The RunConfig field ``name`` where its value is judged: on the command line the
        field and its option (``n (--n)``), from Python ``n=``."""
        return f"{name} ({self.setting(name)})" if self.options else f"{name}="


#: The CLI's options whose names are not their RunConfig field's (the others: ``batch_size``
#: is ``--batch-size``).
_OPTIONS = {"dataset": "--data", "attacks": "--attack", "defenses": "--defense"}

COMMAND_LINE = Naming("--db", "--fresh", "command", "run `robustkit evaluate` first", True)
PYTHON = Naming(
    "db=", "fresh=True", "run_evaluation call", "call run_evaluation(config, db=...) first"
)
