"""Stored, resumable evaluation runs: the composition of model, data, attacks and the store.

A :class:`RunConfig` says everything that defines a run; its hash is the run's id. Running the
same configuration again continues the stored run: finished shards are skipped (each shard's
attacks are seeded from the run's seed and the shard's index, so the numbers do not depend on
which shards ran in which process), and the report is computed from the store, so a resumed run
reports exactly what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .attack import check_seed, predict
from .budgets import median_l2_at, success_rate_at
from .checks import given, is_whole_number, shown
from .errors import (
    DataError,
    InputError,
    RobustkitError,
    RunStartedOverError,
    StoreWriteError,
    first_line,
)
from .modelcheck import check_model_on
from .naming import COMMAND_LINE, PYTHON, Naming
from .store import Store, defense_names, dumps
from .tables import counted
from .threat import ThreatModel, check_norm, format_eps, parse_eps
from .weights import sha256_file

#: ε used when none is given, by (data set, norm): the budgets most papers report.
DEFAULT_EPS = {
    ("cifar10", "linf"): 8 / 255,
    ("cifar10", "l2"): 0.5,
    ("mnist", "linf"): 0.3,
    ("mnist", "l2"): 2.0,
}
#: Query budgets reported for decision-based attacks (those up to the attack's own budget).
DEFAULT_BUDGETS = (100, 250, 500, 1000, 2000, 5000, 10000)


def default_eps(dataset: str, norm: str) -> float:
    """The conventional ε for a data set and norm (8/255 and 0.5 for CIFAR-10, 0.3 and 2.0 for
    MNIST, 8/255 and 0.5 otherwise)."""
    return DEFAULT_EPS.get((dataset, norm), 8 / 255 if norm == "linf" else 0.5)


@dataclass
class RunConfig:
    """Everything that defines an evaluation run (the CLI's ``evaluate`` options).

    ``attacks`` and ``defenses`` are specs as on the command line (``"pgd:steps=20"``,
    ``"bit-depth:bits=4"``; defenses wrap the model in the order given); ``dataset`` is a data
    set name or an ``.npz`` path (None: the model's); ``eps`` None is the data set's default for
    ``norm``;
    ``queries`` is the budget of decision-based attacks whose spec sets no ``max_queries``;
    ``correct_only`` takes the first ``n`` samples from ``offset`` that the model classifies
    correctly instead of the first ``n``; ``sanity=False`` skips the sanity checks; ``extra``
    holds what is recorded but is not part of the run (``"command"``: the command line that
    made it). ``device`` is not part of the run either: a run resumes on another device.
    """

    model: str
    dataset: str | None = None
    split: str = "test"
    n: int = 1000
    offset: int = 0
    correct_only: bool = False
    attacks: tuple[str, ...] = ()
    defenses: tuple[str, ...] = ()
    norm: str = "linf"
    eps: float | str | None = None
    targeted: bool = False
    queries: int = 1000
    batch_size: int = 250
    seed: int = 0
    device: str = "auto"
    weights: str | None = None
    unsafe_load: bool = False
    sanity: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def random_targets(y: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """A target class for every sample, uniformly among the classes other than its label."""
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, y.shape, generator=gen)
    return (y + shift) % num_classes


def shard_class_targets(
    y: torch.Tensor, num_classes: int, seed: int, shard_size: int
) -> torch.Tensor:
    """A target class for every sample, uniformly among the true classes of the other samples of
    its shard (consecutive ``shard_size`` samples) that differ from its own label; uniformly among
    all other classes when its shard has none.

    Decision-based targeted attacks start from an image of the target class, and they see only
    their shard: with random classes, a shard of 10 CIFAR-10 images lacks the target class of
    about a third of its images, which then get no start at all."""
    gen = torch.Generator().manual_seed(seed)
    target = random_targets(y, num_classes, seed)  # kept for shards of a single class
    for start in range(0, y.numel(), shard_size):
        ys = y[start : start + shard_size]
        present = torch.unique(ys)  # sorted; holds every label of the shard
        if present.numel() < 2:
            continue  # one class only: keep the random targets
        own = torch.searchsorted(present, ys)
        # uniform among the other present classes: skip over the sample's own class
        pick = torch.randint(present.numel() - 1, ys.shape, generator=gen)
        target[start : start + shard_size] = present[pick + (pick >= own).long()]
    return target


def first_correct_indices(
    model, dataset: str, split: str, n: int, offset: int, device
) -> list[int]:
    """Indices of the first ``n`` samples from ``offset`` that ``model`` classifies correctly.

    On a randomized model (a defense that labels by majority vote) "correctly" is this pass's
    vote, drawn from the run's seeded generator: reproducible, but a sample near a tie can be
    voted wrong by the shard's own clean pass, which then reports it as already misclassified
    (so a run's clean accuracy there can be just under 100%)."""
    from .data import dataset_size, described, load_dataset

    total, found, start = dataset_size(dataset, split), [], offset
    source = described(dataset, split)
    if offset >= total:  # ("only 0 correctly classified samples from offset ...")
        raise DataError(
            f"offset={offset} is past the end of {source} ({counted(total, 'sample')}); "
            f"use an offset below {total}"
        )
    while len(found) < n and start < total:
        stop = min(start + 500, total)
        x, y = load_dataset(dataset, split, n=stop - start, offset=start)
        ok = (predict(model, x.to(device)).cpu() == y).nonzero().flatten() + start
        found.extend(ok.tolist())
        start = stop
    if len(found) < n:
        fix = (
            f"use n <= {len(found)} or a smaller offset"
            if found
            else "is it the model for these images and labels?"
        )
        raise InputError(
            f"{source} has {counted(total, 'sample')}: {len(found)} of the "
            f"{counted(total - offset, 'sample')} from "
            f"offset {offset} are classified correctly, {n} asked; {fix}"
        )
    return found[:n]


def package_versions() -> dict[str, str]:
    from . import __version__

    return {
        "robustkit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


@dataclass
class Run:
    """A prepared run: the loaded model, data, attacks and the identity in the store."""

    config: RunConfig
    run_id: str
    model: Any
    attacks: dict[str, Any]
    indices: list[int]
    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None
    dataset: str
    eps: float
    device: torch.device
    fields: dict[str, Any]
    #: Why the configuration's explicit ε is used by no attack (None when it is): a new run is
    #: refused with it; a run stored so before (when it was ignored) still resumes.
    unused_eps: str | None = None
    #: Why --eps or --targeted is refused for a run without attacks (a stored one resumes).
    unused_flag: str | None = None
    #: Where an attack is spelled otherwise than its label: the run id, the labels (by label)
    #: and the attacks' JSON that the run had before spellings were made one (2026-11-29).
    stored_as: tuple[str, dict[str, str], str] | None = None


def _specs(what: str, specs: Any, example: str) -> tuple[str, ...]:
    """``specs`` as a tuple of spec texts. One text is one spec: ``attacks="pgd"`` (or
    ``("pgd")``, which Python reads as a plain string) was taken letter by letter, "unknown
    attack 'p'"."""
    if isinstance(specs, str):
        return (specs,)
    if isinstance(specs, (list, tuple)) and all(isinstance(s, str) for s in specs):
        return tuple(specs)
    bad = (
        next((s for s in specs if not isinstance(s, str)), specs)
        if isinstance(specs, (list, tuple))
        else specs
    )
    hint = (
        "; for configured attack objects use robustkit.evaluate(model, attacks, x, y)"
        if what == "attacks"
        else ""
    )
    raise InputError(
        f"RunConfig {what} must be spec texts such as {example} (the CLI's options), got "
        f"{type(bad).__name__} {bad!r:.60}{hint}"
    )


def _numbered(label: str, taken: dict[str, Any]) -> str:
    """``label``, or ``label#2``, ``label#3``, ... where ``taken`` has it: an attack given twice
    in one run is two columns."""
    numbered, k = label, 2
    while numbered in taken:
        numbered, k = f"{label}#{k}", k + 1
    return numbered


def check_config(config: RunConfig, named: Naming = COMMAND_LINE) -> RunConfig:
    """``config`` with its specs as tuples of texts and its counts as Python ints, or a one-line
    error before anything is loaded or stored: ``n="10"`` and ``batch_size=None`` crashed with
    a TypeError, ``batch_size=2.5`` left an empty run marked running in the store,
    ``queries=100.5`` ran 100 queries, and ``batch_size=np.int64(250)`` gave another run id
    than 250 (the identity wrote it as text). An empty ``dataset`` or ``weights`` path is an
    error too. ``named``: how the errors name the fields (``n (--n)``, or ``n=`` from Python)."""
    for what, value, rule, least in (
        ("n", config.n, "a positive number of samples", 1),
        ("offset", config.offset, "the index of the first sample, 0 or more", 0),
        ("queries", config.queries, "a positive query budget per image", 1),
        ("batch_size", config.batch_size, "a positive number of samples per shard", 1),
    ):
        if not is_whole_number(value) or value < least:
            raise InputError(
                f"{named.field(what)} must be {rule} (a whole number), got {shown(value)}"
            )
    # An empty path (an unset variable: --data "$DATA") was taken for none: the model's own
    # data set was evaluated instead, without a word.
    for what, value, expected, default in (
        ("dataset", config.dataset, "a data set name or an .npz path", "data set"),
        ("weights", config.weights, "a checkpoint path", "checkpoint"),
    ):
        if isinstance(value, str) and not value.strip():
            raise InputError(
                f"{named.field(what)} is empty (an unset variable?); give {expected}, or leave "
                f"{named.setting(what)} out for the model's own {default}"
            )
    return replace(
        config,
        attacks=_specs("attacks", config.attacks, "('fgsm', 'pgd:steps=20')"),
        defenses=_specs("defenses", config.defenses, "('bit-depth:bits=4',)"),
        n=int(config.n),
        offset=int(config.offset),
        queries=int(config.queries),
        batch_size=int(config.batch_size),
        seed=check_seed(config.seed),  # np.int64(1) is a seed too
    )


def prepare(config: RunConfig, named: Naming = COMMAND_LINE) -> Run:
    """Load everything a run needs and compute its id (no attack runs yet). ``named``: how the
    errors name the run's settings, the CLI's options (``--eps``) or RunConfig's fields
    (``eps=``, :data:`~robustkit.naming.PYTHON`)."""
    from . import zoo
    from .data import DATASETS, is_data_file, load_dataset
    from .device import resolve_device, seed_everything
    from .specs import as_typed, build_attack, build_defense, canonical_spec, registered_spec

    norm = check_norm(config.norm)
    config = check_config(config, named)
    device = resolve_device(config.device, named)
    seed_everything(config.seed)
    is_file = zoo.is_user_file(config.model)
    info = zoo.model_info(config.model)  # (an own model's file must exist)
    if info.get("name"):  # names match in any case: store the registered spelling, one run id
        config = replace(config, model=info["name"])
    trained_on = info.get("dataset")
    dataset = config.dataset or trained_on
    if dataset is None:
        raise InputError(
            f"{named.field('dataset')} is needed: {config.model!r} does not say which data set it "
            f"takes; give {' or '.join(DATASETS)}, or an .npz file of images and labels"
        )
    if config.dataset is None and dataset not in DATASETS:  # an ImageNet model, say
        raise InputError(
            f"{named.field('dataset')} is needed: {config.model} classifies {dataset} images "
            f"and robustkit has no {dataset} data; pass such images as "
            f"{named.setting('dataset', 'file.npz')} (arrays x: "
            "N×C×H×W images, uint8 or in [0, 1]; y: its class indices)"
        )
    if trained_on in (*DATASETS, "imagenet") and dataset in DATASETS and dataset != trained_on:
        # another data set's labels are not this model's classes (a torchvision model on
        # CIFAR-10 was scored against ImageNet classes 0-9)
        raise InputError(
            f"{config.model} was trained on {trained_on} but {named.setting('dataset', dataset)} "
            f"holds {dataset} images and labels, which are not its classes; evaluate it on "
            f"{trained_on} data "
            f"({named.setting('dataset', trained_on if trained_on in DATASETS else 'file.npz')})"
        )
    if is_data_file(dataset) and config.split != "test":
        raise InputError(
            f"{named.setting('split', config.split)} does not apply to a data file ({dataset} "
            f"is one set of images); drop {named.dropped('split', config.split)}"
        )
    eps = parse_eps(config.eps) if config.eps is not None else default_eps(dataset, norm)
    ThreatModel(norm=norm, eps=eps)  # a one-line error for an ε the norm cannot have
    targeted = config.targeted or None
    attacks: dict[str, Any] = {}
    typed: dict[str, dict[str, Any]] = {}  # the attacks as identities spelled them before
    for spec in config.attacks:
        atk = build_attack(
            spec, norm=norm, eps=eps, max_queries=config.queries, targeted=targeted, named=named
        )
        # One threat model per run: its worst case and its leaderboard table are at (norm, ε).
        # (an ε as written, e.g. 0.03137255 for 8/255, is the same to 1e-6)
        if atk.eps is not None and (
            atk.norm != norm or not math.isclose(atk.eps, eps, rel_tol=1e-6)
        ):
            raise InputError(
                f"attack {spec!r} is set to {atk.norm} ε={format_eps(atk.eps)} but the run's "
                f"threat model is {norm} ε={format_eps(eps)}; a run has one: drop norm=/eps= "
                "from the spec, or evaluate that attack in a run of its own "
                f"({named.setting('norm')}, {named.setting('eps')})"
            )
        text, params = as_typed(spec, atk.name, atk.params)
        typed[_numbered(text, typed)] = {"name": atk.name, "params": params}
        attacks[_numbered(registered_spec(spec, atk.name), attacks)] = atk
    unused_flag = None
    if not attacks and (config.eps is not None or config.targeted):
        # a clean-accuracy run: an ε or targets would change nothing computed, only the run's
        # identity (a second run of the same numbers); refused by execute for a new run (one
        # stored before 2026-11-28, when it was taken, still resumes)
        if config.eps is not None:
            flag = named.dropped("eps", config.eps)
        else:
            flag = named.dropped("targeted", True)
        attack = named.setting("attacks")
        unused_flag = (
            f"{flag} is used by no attack: without {attack} a run measures clean accuracy "
            f"only; add {'an ' if named.options else ''}{attack} or drop {flag}"
        )
    elif config.targeted and not any(a.targeted for a in attacks.values()):
        # every spec says targeted=false: a run headed "targeted" with no targeted attack in it
        # (refused for a new run, as above; one stored before 2026-11-29 still resumes)
        flag = named.dropped("targeted", True)
        unused_flag = (
            f"{flag} is used by no attack: every attack here is set untargeted "
            f"({', '.join(attacks)}); drop {flag}, or targeted=false from a spec"
        )
    unused_eps = None
    if config.eps is not None and attacks and all(a.eps is None for a in attacks.values()):
        # label-only attacks in an L∞ run are minimum-norm: an ε given for them is ignored
        # (refused by execute for a new run; a run stored so before still resumes)
        unused_eps = (
            f"{named.setting('eps', config.eps)} is used by no attack here: the label-only "
            f"attacks ({', '.join(attacks)}) are L2 and minimum-norm in a {norm} run; give "
            f"{named.setting('norm', 'l2')} to judge them at an L2 ε, or drop "
            f"{named.dropped('eps', config.eps)}"
        )
    defenses = [build_defense(spec) for spec in config.defenses]
    # Each defense by its canonical spec (BIT-DEPTH is bit-depth:bits=4,bpda=false), in the
    # order it wraps the model (the first given wraps it first): the order is part of the run.
    names = [d.name for d in defenses]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(
            f"defense {twice[0]!r} is given more than once; give each defense once "
            "(a stronger setting, e.g. a larger sigma, instead of a repeat)"
        )
    # (the loader's advice names the CLI's options or RunConfig's fields, not its arguments:
    # RunConfig(allow_unsafe=True) is a TypeError)
    model = zoo.load_model(
        config.model,
        device=device,
        weights=config.weights,
        allow_unsafe=config.unsafe_load,
        named=named,
    )
    sha = zoo.weights_sha256(model)
    if config.weights is not None and sha is not None and sha == info.get("sha256"):
        # --weights naming the zoo's own checkpoint (the pinned bytes) loads the zoo model: the
        # same run as without it, stored as the zoo model's whichever command came first (the
        # leaderboard called it an own checkpoint when the --weights run was stored first)
        config = replace(config, weights=None)
    state_sha256 = zoo.state_sha256(model) if sha is None else None
    base = model
    for defense in defenses:
        model = defense.apply(model)
    members = loaded_members(model, base)
    if config.correct_only:
        indices = first_correct_indices(
            model, dataset, config.split, config.n, config.offset, device
        )
        x, y = load_dataset(dataset, config.split, indices=indices)
    else:
        x, y = load_dataset(dataset, config.split, n=config.n, offset=config.offset, named=named)
        indices = list(range(config.offset, config.offset + len(y)))
    # Before anything is stored: can the model classify these images, into these labels?
    _, scores = check_model_on(model, x, y, named=named)
    for atk in attacks.values():  # (what an attack would find out in its first shard)
        atk.check_classes(scores.shape[1])
        atk.check_image_shape(tuple(x.shape[1:]))
    target = None
    # targeted label-only attacks start from an image of the target class in their shard
    shard_targets = any(a.targeted and a.family == "decision" for a in attacks.values())
    if any(a.targeted for a in attacks.values()):
        with torch.no_grad():
            num_classes = model(x[:1].to(device)).shape[1]
        if shard_targets:
            target = shard_class_targets(y, num_classes, config.seed, config.batch_size)
        else:
            target = random_targets(y, num_classes, config.seed)
    identity = {
        "model": config.model,
        "weights_sha256": sha,
        "dataset": dataset,
        "split": config.split,
        "indices": indices,
        "norm": norm,
        "eps": eps,
        "attacks": {label: {"name": a.name, "params": a.params} for label, a in attacks.items()},
        # by registered name and every parameter (defaults included), not the spec's text:
        # bit-depth, bit-depth:bits=4 and bit-depth:bits=4,bpda=false are one configuration
        "defenses": [[canonical_spec(d.name, d.params), d.params] for d in defenses],
        "targeted": bool(config.targeted),
        "seed": config.seed,
        "batch_size": config.batch_size,
    }
    if shard_targets:
        identity["targets"] = "shard classes"  # how targets are drawn (see shard_class_targets)
    if is_data_file(dataset):
        # a data file is known by its contents, not by its path: another file at the same path
        # is another run, and ./x.npz, x.npz or a copy elsewhere are the same one
        identity["dataset"] = "data file"
        identity["data_sha256"] = sha256_file(Path(dataset).expanduser())
    if is_file:
        # likewise an own model is known by its file's contents and its factory: an edited
        # factory is another run, ./net.py:net and net.py:net are one (what the file imports
        # from elsewhere is hashed only through the parameters, below; --fresh starts over
        # after an edit that changes none)
        model_file, _, factory = config.model.rpartition(":")
        identity["model"] = f"model file:{factory}"
        identity["model_file_sha256"] = sha256_file(Path(model_file).expanduser())
    if sha is None:
        # no checkpoint file names the weights (a factory loaded its own, or drew them): the
        # parameters themselves do, so a resume never mixes the results of two models
        identity["model_state_sha256"] = state_sha256
    if members:
        # the models a defense loaded (ensemble members) that their names do not pin: an edited
        # member file, or other weights it loads, is another run (zoo members add nothing here,
        # their names pin their weights, so the ids of runs with zoo members stay as they were)
        identity["member_models"] = members
    run_id = hashlib.sha256(dumps(identity).encode()).hexdigest()[:16]
    stored_as = None
    if dumps(typed) != dumps(identity["attacks"]):
        # an attack spelled otherwise than its label (spaces, pgd:step-size=...) had the
        # spec's text as its label, hence another run id, until 2026-11-29: a run stored so is
        # resumed under that id and those labels (see adopt_stored_spelling)
        typed_id = hashlib.sha256(dumps({**identity, "attacks": typed}).encode()).hexdigest()
        stored_as = (typed_id[:16], dict(zip(attacks, typed, strict=True)), dumps(typed))
    fields = {
        # eps_given: the --eps as given (None: the default), kept apart from the ε used
        "config": dumps(
            {**asdict(config), "eps": eps, "eps_given": config.eps, "dataset": dataset}
        ),
        "model": config.model,
        "weights_sha256": sha,
        "dataset": dataset,
        "split": config.split,
        "indices": dumps(indices),
        "norm": norm,
        "eps": eps,
        "attacks": dumps(identity["attacks"]),
        # the text with every digit of a parameter, where the identity's has 6 (sigma=0.1000001
        # was shown, and ranked, as 0.1); readers show the text store.defense_text makes from
        # the parameters, the same for a run stored before with another text
        "defenses": dumps(
            [[canonical_spec(d.name, d.params, exact=True), d.params] for d in defenses]
        ),
        "seed": config.seed,
        "device": str(device),
        "versions": dumps(package_versions()),
        "training": info.get("training", "user model" if is_file else None),
        "command": config.extra.get("command"),
    }
    return Run(
        config, run_id, model, attacks, indices, x, y, target, dataset, eps, device, fields,
        unused_eps,
        unused_flag,
        stored_as,
    )  # fmt: skip


def loaded_members(defended: Any, base: Any) -> list[list[Any]]:
    """What identifies each model a defense loaded into ``defended`` (an ensemble's members; not
    ``base``, the evaluated model, nor what it holds), as the run's own model is identified: for
    a ``file.py:factory`` member the sha256 of its file, and for one that no checkpoint file names
    (a factory's own weights) that of its parameters. ``[name, {...}]`` per such member, in the
    order the defended model holds them; a zoo member (its name pins its weights) adds none."""
    from . import zoo

    if not isinstance(defended, torch.nn.Module):
        return []
    theirs = {id(m) for m in base.modules()} if isinstance(base, torch.nn.Module) else set()
    out: list[list[Any]] = []
    for module in defended.modules():
        name = getattr(module, "robustkit_name", None)
        if id(module) in theirs or not isinstance(name, str):
            continue
        theirs.update(id(m) for m in module.modules())  # its own submodules are part of it
        entry: dict[str, Any] = {}
        if zoo.is_user_file(name):
            entry["file_sha256"] = sha256_file(Path(name.rpartition(":")[0]).expanduser())
        if zoo.weights_sha256(module) is None:
            entry["state_sha256"] = zoo.state_sha256(module)
        if entry:
            out.append([name, entry])
    return out


def shard_rows(run: Run, shard) -> tuple[list[tuple], list[tuple], dict[str, float]]:
    """The store rows of one finished shard."""
    idx = run.indices[shard.start : shard.stop]
    samples = list(zip(idx, shard.y.tolist(), shard.clean_pred.tolist(), strict=True))
    rows, seconds = [], {}
    for label, res in shard.results.items():
        seconds[label] = res.seconds
        robust = res.robust.tolist()
        trajectories = res.trajectories
        stages = res.extras.get("fooled_by")
        for j, i in enumerate(idx):
            traj = None
            if trajectories is not None:
                traj = json.dumps([[int(q), float(d)] for q, d in trajectories[j].tolist()])
            stage = int(stages[j]) if stages is not None else None
            rows.append(
                (
                    label,
                    i,
                    int(res.attacked[j]),
                    int(res.success[j]),
                    int(robust[j]),
                    int(res.adv_pred[j]),
                    float(res.norms[j]),
                    float(res.l2[j]),
                    float(res.linf[j]),
                    int(res.queries[j]),
                    int(res.gradients[j]),
                    traj,
                    stage,
                )
            )
    return samples, rows, seconds


#: Samples the sanity checks look at: the convergence check attacks (at most 64 of) the
#: worst-case survivors among them, so it needs enough to find some on robust models.
SANITY_SAMPLES = 256


def is_decision(params: dict[str, Any]) -> bool:
    """Whether an attack (its stored parameters) is decision-based: it has a query budget and
    is L2 (label-only attacks are L2 only, see :class:`~robustkit.attack.Attack`: an L∞ attack
    with a budget, a score-based one, was reported with "median L2" and its L∞ ε as an L2 one)."""
    return "max_queries" in params and params.get("norm", "l2") == "l2"


def fooled_within_eps(params: dict[str, Any], row: dict[str, Any]) -> bool:
    """Whether a stored result row counts as a success within the threat model, as
    ``success_rate`` counts it (:attr:`AttackResult.success_rate`): attacked and fooled, and for
    a minimum-norm (decision-based) attack given an ε, by a perturbation of at most ε."""
    eps = params.get("eps")
    within = not is_decision(params) or eps is None or row["norm"] <= eps
    return bool(row["attacked"] and row["success"] and within)


def decision_eps(params: dict[str, Any], run: dict[str, Any]) -> float | None:
    """The L2 ε a decision-based attack's success is reported at: its own, else the run's when
    the run is L2 (else none)."""
    eps = params.get("eps")
    return eps if eps is not None else (run["eps"] if run["norm"] == "l2" else None)


def counts_in_worst_case(params: dict[str, Any]) -> bool:
    """Whether an attack's results enter the worst-case robust accuracy: every attack with a
    threat-model ε does; a min-norm (decision-based, no ε) attack does not."""
    return not is_decision(params) or params.get("eps") is not None


def worst_case(
    correct: dict[int, bool], attacks: dict[str, Any], rows: dict[str, list[dict]]
) -> dict[int, bool]:
    """Per data-set index: correctly classified and robust under every attack that counts
    (``rows``: each attack label's stored result rows)."""
    joint = dict(correct)
    for label, spec in attacks.items():
        if counts_in_worst_case(spec["params"]):
            for r in rows[label]:
                joint[r["idx"]] = joint[r["idx"]] and bool(r["robust"])
    return joint


def worst_case_robust(store: Store, run_id: str, indices: list[int]) -> torch.Tensor:
    """The worst-case robustness of the stored run's samples ``indices`` (data-set indices)."""
    attacks = json.loads(store.get_run(run_id)["attacks"])
    correct = {s["idx"]: s["y"] == s["clean_pred"] for s in store.samples(run_id)}
    rows = {label: store.results(run_id, label) for label in attacks}
    joint = worst_case(correct, attacks, rows)
    return torch.tensor([joint.get(i, False) for i in indices], dtype=torch.bool)


def _stored_ignoring_eps(store: Store, run_id: str) -> bool:
    """Whether the store holds this run as the code before the unused-ε refusal stored it (its
    config has no ``eps_given``): such a run, made with an --eps that no attack used, resumes.
    A run stored since was made without one (the default ε, the same identity): a command
    with one is refused as it is on an empty store."""
    stored = store.get_run(run_id)
    return stored is not None and "eps_given" not in json.loads(stored["config"])


def adopt_stored_spelling(run: Run, store: Store) -> None:
    """Make ``run`` the one ``store`` holds under the id and labels its attacks' spelling gave
    before spellings were made one (``pgd: steps=2`` was a run apart from ``pgd:steps=2``), if
    the store holds that run and not this one: the command that stored it resumes it (or, with
    --fresh, replaces it) instead of starting another."""
    if run.stored_as is None or store.get_run(run.run_id) is not None:
        return
    run_id, labels, attacks = run.stored_as
    if store.get_run(run_id) is None:
        return
    run.run_id = run_id
    run.attacks = {labels[label]: atk for label, atk in run.attacks.items()}
    run.fields = {**run.fields, "attacks": attacks}
    run.stored_as = None


def execute(
    run: Run, store: Store, fresh: bool = False, progress: bool = True, recompute: bool = False
):
    """Compute the shards the store lacks, write each as it finishes, run the sanity checks,
    and mark the run finished. Returns the in-memory evaluation of the shards computed now.

    ``recompute`` also recomputes the stored shards in memory (to get their adversarial
    examples back; every shard is seeded on its own, so they come out the same) without
    writing them again."""
    from .evaluation import evaluate
    from .sanity import run_checks

    adopt_stored_spelling(run, store)
    if run.unused_eps and (fresh or not _stored_ignoring_eps(store, run.run_id)):
        raise InputError(run.unused_eps)
    if run.unused_flag and (fresh or store.get_run(run.run_id) is None):
        raise InputError(run.unused_flag)
    # A finished run with every sample stored computes nothing new: it keeps its checks and
    # the time it finished, unless it never had checks.
    complete = not fresh and store.is_complete(run.run_id)
    if not complete:  # (a complete run writes nothing: it reads even from a read-only store)
        store.start_run(run.run_id, run.fields, fresh=fresh)
    elif run.config.sanity and not store.checks(run.run_id):
        # but the checks it never had, computed to be stored: a store that would refuse them
        # is refused before they are computed
        store.check_writable()
    # (a fresh run computes every shard; the earlier run's stay stored until its first)
    done = set() if store.replacing(run.run_id) else store.finished_shards(run.run_id)

    def on_shard(shard) -> None:
        if shard.index in done:
            return
        samples, rows, seconds = shard_rows(run, shard)
        store.write_shard(
            run.run_id, shard.index, shard.start, shard.stop, shard.seconds, seconds, samples, rows
        )

    with _user_code_errors(run, store, fresh):
        evaluation = evaluate(
            run.model,
            run.attacks,
            run.x,
            run.y,
            target=run.target,
            batch_size=run.config.batch_size,
            seed=run.config.seed,
            progress=progress,
            skip_shards=() if recompute else done,
            on_shard=on_shard,
        )
        if complete and (store.checks(run.run_id) or not run.config.sanity):
            return evaluation
        if run.config.sanity:
            summary = summarize(store, run.run_id)
            survivors = worst_case_robust(store, run.run_id, run.indices[:SANITY_SAMPLES])
            store.write_checks(
                run.run_id, run_checks(run, summary, sample=SANITY_SAMPLES, survivors=survivors)
            )
        if not complete:
            store.finish_run(run.run_id)
        return evaluation


def stored_note(run: Run, store: Store, fresh: bool) -> tuple[str, str]:
    """What a run stopped early has kept, and how to go on: ("2 of 4 shards of run ID are
    stored in PATH", "rerun the same command to resume"), without --fresh where it was given
    (--fresh again would delete what is stored). A fresh run stopped before its first shard
    has replaced nothing: the earlier run's results are kept, and the same command starts
    over. A store opened from Python says "the same run_evaluation call" and "fresh=True"
    (see :class:`~robustkit.naming.Naming`)."""
    from .evaluation import iter_shards

    if store.replacing(run.run_id):
        return (
            f"nothing new is stored; the earlier results of run {run.run_id} in {store.path} "
            "are kept",
            f"rerun the same {store.named.command} to start over",
        )
    stored = len(store.finished_shards(run.run_id))
    total = sum(1 for _ in iter_shards(len(run.y), run.config.batch_size))
    how = f"the same {store.named.command}" + (f" without {store.named.fresh}" if fresh else "")
    return (
        f"{stored} of {counted(total, 'shard')} of run {run.run_id} are stored in {store.path}",
        (f"rerun {how} to resume"),
    )


@contextmanager
def _user_code_errors(run: Run, store: Store, fresh: bool) -> Iterator[None]:
    """Say what is stored when a run stops on an error after some shards finished.

    An exception raised in the user's model code (a bug for some inputs, a GPU out of memory)
    becomes one line: the exception, its line in the model file, and how many shards are stored
    to resume from (it ended in a traceback that did not say the finished shards are kept). A
    robustkit error (a model's NaN outputs on a later shard, say) keeps its class and message
    and gains the same note where shards are stored, or where a fresh run has not replaced an
    earlier one yet (its results are kept). Other exceptions (robustkit's own bugs) keep their
    traceback."""
    from .zoo.loading import user_code_line

    try:
        yield
    except Exception as exc:
        if isinstance(exc, RunStartedOverError):
            raise  # (what is stored is another process's run: its shards are not this one's)
        where = None if isinstance(exc, RobustkitError) else user_code_line(exc)
        if where is None and not isinstance(exc, RobustkitError):
            raise
        if (
            isinstance(exc, RobustkitError)
            and not store.replacing(run.run_id)
            and not store.finished_shards(run.run_id)
        ):
            raise  # nothing computed is at stake
        kept, go_on = stored_note(run, store, fresh)
        if isinstance(exc, StoreWriteError):  # (its own advice ignores --fresh and the shards)
            message = (
                f"cannot write to the results store {store.path}: {exc.reason}; {kept}: "
                f"{exc.remedy} and {go_on}"
            )
            raise StoreWriteError(message, exc.reason, exc.remedy) from exc
        if where is None:
            message = f"{first_line(exc)}; {kept}: fix that and {go_on}"
            try:
                error = type(exc)(message)
            except TypeError:  # (a subclass that takes other arguments)
                error = RobustkitError(message)
            raise error from exc
        raise RobustkitError(
            f"the model raised {type(exc).__name__}: {first_line(exc)} at {where[0]} line "
            f"{where[1]}; {kept}: {go_on} (an edited model file is another run, which starts "
            "over)"
        ) from exc


def run_evaluation(
    config: RunConfig, db: str | Path | None = None, fresh: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run (or resume) ``config`` against the store at ``db``; return its report from the store.

    What ``robustkit evaluate`` does, from Python: shards the store already holds are not
    computed again, ``fresh=True`` starts over, the sanity checks run (unless
    ``config.sanity`` is False) and are stored, and the report is the dict that
    ``robustkit evaluate --format json`` prints. ``db`` None is the default store
    (:func:`robustkit.store.default_db_path`). A mistake in ``config`` raises a one-line
    :class:`~robustkit.RobustkitError` before anything is stored, naming RunConfig's fields
    (``eps=``) where the CLI names its options (``--eps``): an unknown model, attack or
    defense name is an :class:`~robustkit.errors.UnknownNameError`, an unknown parameter or an
    ε no attack uses an :class:`~robustkit.errors.InputError`, as is a ``config`` that is no
    :class:`RunConfig` (a model's name, as ``robustkit evaluate`` takes it, or a dict)."""
    if not isinstance(config, RunConfig):  # (it was "'str' object has no attribute 'norm'")
        if isinstance(config, str):
            hint = f"RunConfig(model={config!r}, ...)"
        elif isinstance(config, dict):
            hint = "RunConfig(**config)"
        else:
            hint = "RunConfig(model=..., ...)"
        raise InputError(f"run_evaluation takes a RunConfig, got {given(config)}; pass {hint}")
    run = prepare(config, PYTHON)
    with Store.open(db, named=PYTHON) as store:
        execute(run, store, fresh=fresh, progress=progress)
        return summarize(store, run.run_id)


# ------------------------------------------------------------------------------------------------
# Reports computed from the store
# ------------------------------------------------------------------------------------------------
def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def decision_figures(rows: list[dict], budgets: list[int], eps: float | None) -> dict[str, Any]:
    """Median L2 at each budget and success rate at ε within each budget, over attacked samples
    (read from their stored trajectories by :mod:`robustkit.budgets`, as from a result)."""
    trajs = [
        torch.tensor(json.loads(r["trajectory"]), dtype=torch.float64).reshape(-1, 2)
        for r in rows
        if r["attacked"] and r["trajectory"]
    ]
    out: dict[str, Any] = {"budgets": budgets, "n": len(trajs)}
    out["median_l2"] = median_l2_at(trajs, budgets).tolist()
    if eps is not None:
        out["eps"] = eps
        out["success_rate_at_eps"] = success_rate_at(trajs, eps, budgets).tolist()
    return out


def summarize(store: Store, run_id: str) -> dict[str, Any]:
    """The report of a stored run: clean, per-attack and worst-case robust accuracy, norms,
    counts and timings, decision-attack figures and sanity checks, all from the stored rows,
    read in one snapshot (another process may be writing the run's next shard meanwhile)."""
    with store.snapshot():
        return _summarize(store, run_id)


def _summarize(store: Store, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise InputError(f"no run {run_id!r} in {store.path}")
    samples = store.samples(run_id)
    n = len(samples)
    correct = {s["idx"]: s["y"] == s["clean_pred"] for s in samples}
    attacks = json.loads(run["attacks"])
    config = json.loads(run["config"])
    versions = json.loads(run["versions"] or "{}")
    seconds: dict[str, float] = {}
    for shard in store.shards(run_id):
        for label, sec in json.loads(shard["attack_seconds"]).items():
            seconds[label] = seconds.get(label, 0.0) + sec
    rows_by_label = {label: store.results(run_id, label) for label in attacks}
    joint = worst_case(correct, attacks, rows_by_label)
    report_attacks: dict[str, Any] = {}
    for label, spec in attacks.items():
        rows = rows_by_label[label]
        params = spec["params"]
        family = "decision" if is_decision(params) else "gradient"
        eps = params.get("eps")
        attacked = [r for r in rows if r["attacked"]]
        fooled = [r for r in attacked if r["success"]]  # its norms: all it found
        within = [r for r in attacked if fooled_within_eps(params, r)]
        row = {
            "attack": spec["name"],
            "family": family,
            "params": params,
            "threat": ThreatModel(
                params.get("norm", run["norm"]), eps, bool(params.get("targeted"))
            ).describe(),
            "n": len(rows),
            # NaN (null in JSON) for a minimum-norm attack without an ε, as the API gives it
            # (AttackResult.robust_accuracy): it judges no robustness at a budget
            "robust_accuracy": float(np.mean([r["robust"] for r in rows]))
            if rows and counts_in_worst_case(params)
            else math.nan,
            "success_rate": len(within) / len(attacked) if attacked else math.nan,
            "median_norm": _median([r["norm"] for r in fooled]),
            "max_norm": max((r["norm"] for r in fooled), default=math.nan),
            "forwards": sum(r["queries"] for r in rows),
            "gradients": sum(r["gradients"] for r in rows),
            "seconds": seconds.get(label, math.nan),
        }
        if "stages" in params and rows and rows[0].get("stage") is not None:
            # an ensemble: robust accuracy after each stage (cumulative)
            row["stages"] = [
                {
                    "stage": st,
                    "robust_accuracy": float(
                        np.mean(
                            [
                                correct[r["idx"]]
                                and (r["stage"] is None or r["stage"] < 0 or r["stage"] > k)
                                for r in rows
                            ]
                        )
                    )
                    if rows
                    else math.nan,
                }
                for k, st in enumerate(params["stages"])
            ]
        if family == "decision":
            max_q = int(params["max_queries"])
            budgets = sorted({b for b in DEFAULT_BUDGETS if b <= max_q} | {max_q})
            row["decision"] = decision_figures(rows, budgets, decision_eps(params, run))
        report_attacks[label] = row
    return {
        "run_id": run_id,
        "status": run["status"],
        "model": run["model"],
        "weights_sha256": run["weights_sha256"],
        "training": run["training"],
        "data": run["dataset"],
        "split": run["split"],
        "offset": config.get("offset", 0),
        "correct_only": config.get("correct_only", False),
        "weights": config.get("weights"),
        "n": n,
        # the samples the run was given: more than n while it is unfinished
        "n_asked": len(json.loads(run["indices"])),
        "device": run["device"],
        # the package versions that began the run, and those of resumes by a process that
        # differed (its device, a version: only what differed; see Store.start_run)
        "versions": {k: v for k, v in versions.items() if k != "resumed with"},
        "resumed_with": versions.get("resumed with", []),
        "seed": run["seed"],
        # the command line that made it (None from Python): what resumes an unfinished run
        "command": run["command"],
        "defenses": defense_names(run["defenses"]),
        "threat_model": {
            "norm": run["norm"],
            "eps": run["eps"],
            "eps_text": format_eps(run["eps"]),
            "targeted": bool(config.get("targeted", False)),
        },
        "clean_accuracy": float(np.mean(list(correct.values()))) if n else math.nan,
        "attacks": report_attacks,
        # None without an attack that has an ε: minimum-norm attacks alone would leave the
        # clean accuracy standing in for a robust accuracy.
        "robust_accuracy": float(np.mean(list(joint.values())))
        if n and any(counts_in_worst_case(spec["params"]) for spec in attacks.values())
        else None,
        "checks": [
            {"name": c["name"], "flagged": bool(c["flagged"]), "detail": c["detail"]}
            for c in store.checks(run_id)
        ],
        "db": str(store.path),
    }
