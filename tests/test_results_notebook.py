"""Notebook API: DataFrames equal the store's rows; plots; the example notebook executes."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import robustkit  # noqa: E402
import robustkit.results as rr  # noqa: E402
from robustkit import plots  # noqa: E402
from robustkit.runner import RunConfig, run_evaluation  # noqa: E402

from .helpers import unpickling_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb") / "r.db"
    for eps in (0.1, 0.3):
        run_evaluation(
            RunConfig(
                model="mnist/cnn-tiny-at",
                n=30,
                eps=eps,
                batch_size=30,
                attacks=("fgsm",),
                device="cpu",
            ),
            db=path,
            progress=False,
        )
    run_evaluation(
        RunConfig(
            model="mnist/cnn-tiny-at",
            n=3,
            correct_only=True,
            norm="l2",
            attacks=("cgba",),
            queries=40,
            device="cpu",
            sanity=False,
        ),
        db=path,
        progress=False,
    )
    return path


def test_frames_match_the_store(db):
    res = robustkit.results.open(db)
    runs = res.runs
    assert len(runs) == 3 and set(runs["norm"]) == {"linf", "l2"}
    assert not runs["targeted"].any()
    conn = sqlite3.connect(db)
    for _, run in runs.iterrows():
        rows = conn.execute(
            "SELECT y = clean_pred FROM samples WHERE run_id = ?", (run["run_id"],)
        ).fetchall()
        assert run["n"] == len(rows)
        assert run["clean_accuracy"] == pytest.approx(sum(r[0] for r in rows) / len(rows))
    per_sample = res.results()
    assert len(per_sample) == conn.execute("SELECT count(*) FROM results").fetchone()[0]
    fgsm = per_sample[per_sample["attack"] == "fgsm"]
    stored = conn.execute("SELECT avg(robust) FROM results WHERE attack = 'fgsm'").fetchone()[0]
    assert fgsm["robust"].mean() == pytest.approx(stored)
    assert len(res.samples()) == 63 and "clean_correct" in res.samples()
    assert set(res.checks()["name"]) >= {"gradient_masking", "randomized_outputs"}
    cgba_id = runs[runs["norm"] == "l2"]["run_id"].iloc[0]
    curve = res.decision_curve(cgba_id, "cgba", budgets=[10, 20, 40])
    assert list(curve["queries"]) == [10, 20, 40]
    assert curve["median_l2"].is_monotonic_decreasing
    # the per-sample norm stays the perturbation's size; the run's threat model has its own
    # columns, and each attack's success within its ε is the success rate the report gives
    assert per_sample["norm"].dtype == float and set(per_sample["threat_norm"]) == {"linf", "l2"}
    for _, run in runs.iterrows():
        frame = res.results(run["run_id"])
        report = res.summary(run["run_id"])["attacks"]
        for label, rows in frame[frame["attacked"]].groupby("attack"):
            assert rows["success_within_eps"].mean() == pytest.approx(report[label]["success_rate"])
    # the default curve ends at the attack's budget, where the report's figures stand
    curve = res.decision_curve(cgba_id, "cgba")
    decision = res.summary(cgba_id)["attacks"]["cgba"]["decision"]
    assert curve["queries"].iloc[-1] == decision["budgets"][-1] == 40
    assert curve["median_l2"].iloc[-1] == decision["median_l2"][-1]


def test_plots_return_figures(db):
    res = rr.open(db)
    assert plots.robust_accuracy_vs_eps(res).axes
    cgba_id = res.runs.query("norm == 'l2'")["run_id"].iloc[0]
    assert plots.median_l2_vs_queries(res, cgba_id).axes
    x, y = robustkit.load_dataset("mnist", n=4)
    assert len(plots.adversarial_grid(x, x.flip(-1), y, y, n=4).axes) == 12


def test_runs_without_an_attack_at_an_eps_have_no_worst_case_to_plot(tmp_path):
    """A run of minimum-norm attacks alone (or of none) stores no joint robust accuracy, and the
    robust-accuracy plot says so instead of plotting the clean accuracy (or failing on None)."""
    path = tmp_path / "r.db"
    for attacks in (("cgba",), ()):
        report = run_evaluation(
            RunConfig(
                model="mnist/cnn-tiny-at",
                n=3,
                attacks=attacks,
                queries=20,
                device="cpu",
                sanity=False,
            ),
            db=path,
            progress=False,
        )
        assert report["robust_accuracy"] is None
    res = rr.open(path)
    assert res.runs["robust_accuracy"].isna().all()
    with pytest.raises(robustkit.RobustkitError, match="no stored run has an attack with an ε"):
        plots.robust_accuracy_vs_eps(res)


def test_run_config_takes_one_spec_as_text_and_refuses_what_is_no_count(tmp_path):
    """A notebook's RunConfig as users write it: one attack as a plain string (``("fgsm")`` is
    one) runs that attack, not "unknown attack 'f'"; counts that are not whole numbers, and
    attack objects instead of specs, are one-line errors before anything is stored (a
    batch_size of 2.5 left an empty run marked running)."""
    path = tmp_path / "r.db"
    config = RunConfig(model="mnist/lenet5", n=2, attacks="fgsm", device="cpu", sanity=False)
    report = run_evaluation(config, db=path, progress=False)
    assert list(report["attacks"]) == ["fgsm"]
    # the same run as attacks=("fgsm",), and as a batch size given as a NumPy integer
    for same in (
        RunConfig(model="mnist/lenet5", n=2, attacks=("fgsm",), device="cpu", sanity=False),
        RunConfig(
            model="mnist/lenet5",
            n=np.int64(2),
            attacks=["fgsm"],
            batch_size=np.int64(250),
            device="cpu",
            sanity=False,
        ),
    ):
        assert run_evaluation(same, db=path, progress=False)["run_id"] == report["run_id"]
    bad = {
        "n": "2",
        "queries": 100.5,
        "batch_size": None,
        "offset": -1,  # (the data set said "offset must be >= 0", naming no option)
    }
    for key, value in bad.items():
        config = RunConfig(model="mnist/lenet5", n=2, attacks=("cgba",), device="cpu")
        match = rf"^{key}= must be .*got {value!r}"
        with pytest.raises(robustkit.RobustkitError, match=match):
            run_evaluation(replace(config, **{key: value}), db=path, progress=False)
    with pytest.raises(robustkit.RobustkitError, match="spec texts .* got FGSM .*evaluate"):
        run_evaluation(
            RunConfig(model="mnist/lenet5", n=2, attacks=(robustkit.get_attack("fgsm"),)),
            db=path,
            progress=False,
        )
    with pytest.raises(robustkit.RobustkitError, match="batch_size= .*got 2.5"):
        run_evaluation(replace(config, batch_size=2.5), db=path, progress=False)
    assert len(rr.open(path).runs) == 1  # nothing stored by the refused ones


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(robustkit.RobustkitError, match="no results store"):
        rr.open(tmp_path / "absent.db")


@pytest.mark.slow
def test_example_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("ROBUSTKIT_EXAMPLE_N", "20")
    monkeypatch.setenv("ROBUSTKIT_EXAMPLE_DB", str(tmp_path / "nb.db"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(ROOT / "examples" / "robustness_analysis.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # sized as the environment says (N=20 each, CGBA on 10 correctly classified images), in the
    # store it names, as the notebook's text says
    runs = rr.open(tmp_path / "nb.db").runs
    assert sorted(runs["eps"][runs["norm"] == "linf"]) == [0.1, 0.2, 0.3]
    assert set(runs["n"][runs["norm"] == "linf"]) == {20}
    cgba = runs[runs["norm"] == "l2"].iloc[0]
    assert cgba["n"] == 10 and cgba["correct_only"] and cgba["attacks"] == ["cgba"]


def test_the_example_notebook_is_kept_without_outputs():
    """Committed outputs go stale as the code changes (numbers, messages, figures that no
    longer come out): the example keeps none; running it makes them."""
    import json

    nb = json.loads((ROOT / "examples" / "robustness_analysis.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


def test_a_star_import_of_results_leaves_the_builtin_open_alone():
    """`from robustkit.results import *` replaced the built-in `open` with the store opener
    (the module had no __all__): a notebook's next `open("notes.txt")` opened a store. The
    opener stays `rr.open`, as documented; a star import gives the other public names."""
    import builtins

    namespace: dict = {}
    exec("from robustkit.results import *", namespace)
    assert "open" not in namespace and namespace["Results"] is rr.Results
    assert namespace["RUN_COLUMNS"] is rr.RUN_COLUMNS
    assert set(rr.__all__) <= set(vars(rr)) and not set(rr.__all__) & set(dir(builtins))
    # nor does any other public module put a name of its own over a built-in
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(robustkit.__path__, "robustkit."):
        module = importlib.import_module(info.name)
        exported = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
        clashes = [
            n for n in exported if hasattr(builtins, n) and vars(module)[n] is not vars(builtins)[n]
        ]
        assert not clashes, (info.name, clashes)


def test_a_missing_data_set_is_named_as_python_callers_set_it(tmp_path):
    """run_evaluation on a model that names no data set (an own model file, an ImageNet
    model) said "--data is needed", the CLI's option, where a Python caller sets RunConfig's
    ``dataset``; it names that field, as the other RunConfig errors do ("n= must be ...")."""
    net = tmp_path / "net.py"
    net.write_text("import torch\n\ndef build():\n    return torch.nn.Flatten()\n")
    for model in (f"{net}:build", "torchvision/resnet18"):
        config = RunConfig(model=model, n=2, device="cpu", sanity=False)
        with pytest.raises(robustkit.RobustkitError, match=r"^dataset= is needed") as info:
            run_evaluation(config, db=tmp_path / "r.db", progress=False)
        assert "--" not in str(info.value), str(info.value)
    assert not (tmp_path / "r.db").exists()


def test_store_errors_name_the_python_argument_not_the_cli_option(tmp_path, monkeypatch):
    """A store refused from Python said what to do on the command line: ``rr.open("/tmp")``
    said "pass a file as --db", a missing store "run `robustkit evaluate` first". From
    ``results.open`` and ``run_evaluation`` they name the argument, ``db=``."""
    import robustkit.store as store_module

    def refused(path) -> str:
        with pytest.raises(robustkit.RobustkitError) as info:
            rr.open(path)
        message = str(info.value)
        assert "--db" not in message and "robustkit evaluate" not in message, message
        assert "\n" not in message
        return message

    assert refused(tmp_path).endswith("pass a file as db=")
    assert refused("").endswith("as db=, or leave db= out for the default store")
    assert refused(tmp_path / "absent.db").endswith("call run_evaluation(config, db=...) first")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert refused(foreign).endswith("pass another db=")
    with pytest.raises(robustkit.RobustkitError, match="pass a file as db=$"):
        run_evaluation(RunConfig(model="mnist/cnn-tiny-at", n=2), db=tmp_path, progress=False)

    # locked by another program (the store out of WAL mode, written by it)
    db = tmp_path / "r.db"
    config = RunConfig(model="mnist/cnn-tiny-at", n=4, batch_size=2, attacks=("fgsm",))
    run_evaluation(config, db=db, progress=False)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("PRAGMA journal_mode = DELETE")
    other.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT_S", 0.05)
    try:
        assert refused(db).endswith("wait for it to finish or pass another db=")
    finally:
        other.execute("ROLLBACK")
        other.close()
    monkeypatch.undo()

    # a read-only store
    monkeypatch.setattr(store_module, "directory_problem", lambda d: f"{d} is not writable")
    eps = RunConfig(**{**config.__dict__, "eps": 0.2})
    with pytest.raises(robustkit.RobustkitError, match="read-only.*pass a writable db=$"):
        run_evaluation(eps, db=db, progress=False)


def test_a_run_evaluation_stopped_by_the_store_says_how_to_resume_in_python(tmp_path, monkeypatch):
    """run_evaluation stopped by a store write after a shard was stored said "rerun the same
    command without --fresh to resume"; it says which call to repeat and without fresh=True."""
    import robustkit.store as store_module

    db = tmp_path / "r.db"
    config = RunConfig(model="mnist/cnn-tiny-at", n=4, batch_size=2, attacks=("fgsm",))
    run_evaluation(config, db=db, progress=False)
    real_write = store_module.Store.write_shard

    def full_at_the_second_shard(self, run_id, shard, *rest):
        if shard == 1:
            with self.transaction():  # (as SQLite refuses the shard's write)
                raise sqlite3.OperationalError("database or disk is full")
        return real_write(self, run_id, shard, *rest)

    monkeypatch.setattr(store_module.Store, "write_shard", full_at_the_second_shard)
    for fresh, go_on in ((True, "the same run_evaluation call without fresh=True"), (False, "")):
        with pytest.raises(robustkit.RobustkitError) as info:
            run_evaluation(config, db=db, fresh=fresh, progress=False)
        message = str(info.value)
        assert "1 of 2 shards of run" in message and "--" not in message, message
        go_on = go_on or "the same run_evaluation call"
        assert message.endswith(f"free space and rerun {go_on} to resume"), message


def test_run_evaluation_of_something_else_than_a_run_config_is_a_one_line_error(tmp_path):
    """``run_evaluation("cifar10/resnet20")`` (the model's name, as ``robustkit evaluate``
    takes it) ended in "AttributeError: 'str' object has no attribute 'norm'"."""
    db = tmp_path / "r.db"
    for config, hint in (
        ("mnist/cnn-tiny-at", "RunConfig(model='mnist/cnn-tiny-at', ...)"),
        ({"model": "mnist/cnn-tiny-at"}, "RunConfig(**config)"),
        (None, "RunConfig(model=..., ...)"),
    ):
        with pytest.raises(
            robustkit.RobustkitError, match="^run_evaluation takes a RunConfig"
        ) as info:
            run_evaluation(config, db=db, progress=False)
        assert str(info.value).endswith(f"pass {hint}") and "\n" not in str(info.value)
    assert not db.exists()


def test_a_missing_store_given_by_a_relative_path_says_where_it_was_looked_for(
    tmp_path, monkeypatch
):
    """``rr.open("results.db")`` in a notebook (whose working directory is the notebook's, not
    where the store is) said "no results store at results.db", not where that was."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(robustkit.RobustkitError) as info:
        rr.open("results.db")
    assert f"no results store at results.db (in {tmp_path});" in str(info.value)
    with pytest.raises(robustkit.RobustkitError) as info:
        rr.open(tmp_path / "results.db")
    assert f"no results store at {tmp_path / 'results.db'};" in str(info.value)


def test_results_of_a_path_is_a_one_line_error(tmp_path):
    """``rr.Results("results.db")`` (the class, exported, where ``rr.open`` was meant) was
    made, and its first frame ended in "AttributeError: 'str' object has no attribute
    'snapshot'"."""
    for store in ("results.db", tmp_path / "results.db", None):
        with pytest.raises(robustkit.RobustkitError, match="^Results takes an open Store") as info:
            rr.Results(store)
        assert str(info.value).endswith("robustkit.results.open(db)"), str(info.value)


def test_run_config_mistakes_name_the_field_not_the_cli_option(tmp_path):
    """From Python a mistake in RunConfig said what to change on the command line:
    ``RunConfig(eps=0.1)`` without attacks said "--eps is used by no attack: ... add an --attack
    or drop --eps", ``split='train'`` on a data file "drop --split", ``n=0`` "n (--n) must
    be ...". Through run_evaluation each names the RunConfig field (``eps=``) and no option."""
    import torch

    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((2, 1, 28, 28), np.uint8), y=np.zeros(2, np.int64))
    mistakes = [
        (dict(eps=0.1), ["eps=0.1", "attacks="]),
        (dict(targeted=True), ["targeted=True", "attacks="]),
        (dict(targeted=True, attacks=("fgsm:targeted=false",)), ["drop targeted=True"]),
        (dict(eps=0.1, attacks=("cgba",)), ["eps=0.1", "norm='l2'"]),
        (dict(split="train", dataset=str(data)), ["split='train'"]),
        (dict(n=5, dataset=str(data)), ["n=5 from offset=0 asks for 5; use n=2 or fewer"]),
        (dict(dataset="cifar10"), ["dataset='cifar10'", "dataset='mnist'"]),
        (dict(eps=0.1, attacks=("fgsm:eps=0.2",)), ["norm=", "eps="]),
        (dict(attacks=("pgd:norm=l2",)), ["norm='l2', eps="]),
        (dict(targeted=True, attacks=("apgd-ce",)), ["drop targeted=True"]),
        (dict(n=0), ["n="]),
        (dict(offset=-1), ["offset="]),
        (dict(queries=0), ["queries="]),
        (dict(batch_size=0), ["batch_size="]),
        (dict(dataset=""), ["dataset="]),
        (dict(weights=" "), ["weights="]),
    ]
    if not torch.cuda.is_available():
        mistakes.append((dict(device="cuda"), ["device='cpu'"]))
    # MNIST images for a CIFAR-10 model (a data file of another shape)
    mistakes.append((dict(model="cifar10/resnet20", dataset=str(data)), ["dataset='cifar10'"]))
    for fields, needles in mistakes:
        config = RunConfig(**{"model": "mnist/cnn-tiny-at", "n": 2, "device": "cpu", **fields})
        with pytest.raises(robustkit.RobustkitError) as info:
            run_evaluation(config, db=tmp_path / "r.db", progress=False)
        message = str(info.value)
        assert "--" not in message and "\n" not in message, (fields, message)
        for needle in needles:
            assert needle in message, (fields, message)
    assert rr.open(tmp_path / "r.db").runs.empty  # nothing stored


def test_a_checkpoint_that_needs_unpickling_is_refused_with_the_run_config_field(tmp_path):
    """A checkpoint that needs full unpickling, refused from run_evaluation, said "pass
    allow_unsafe=True (CLI: --unsafe-load)": load_model's argument, which RunConfig does not
    have (RunConfig(allow_unsafe=True) is a TypeError). It names RunConfig's unsafe_load, and
    the advice works."""

    net, weights = unpickling_checkpoint(tmp_path)
    config = RunConfig(
        model=f"{net}:build", dataset="mnist", weights=str(weights), n=2, device="cpu"
    )
    with pytest.raises(robustkit.RobustkitError, match="needs full unpickling") as info:
        run_evaluation(config, db=tmp_path / "r.db", progress=False)
    message = str(info.value)
    assert message.endswith("If you trust it, pass unsafe_load=True"), message
    assert "--" not in message and "allow_unsafe" not in message, message
    from robustkit.runner import prepare

    with pytest.raises(robustkit.RobustkitError, match="If you trust it, pass --unsafe-load$"):
        prepare(config)  # (as the CLI prepares a run: its option alone)
    report = run_evaluation(replace(config, unsafe_load=True), db=tmp_path / "r.db", progress=False)
    assert report["n"] == 2


def test_weights_for_a_plugin_that_takes_none_are_refused_with_the_run_config_field(tmp_path):
    """weights= for a plug-in model whose factory takes none, refused from run_evaluation, said
    "drop --weights", the CLI's option; it names RunConfig's weights= field."""
    import torch

    from robustkit.registry import MODELS

    weights = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), weights)
    MODELS.add("test/plugin-no-weights", lambda: torch.nn.Linear(4, 2), dataset="mnist")
    try:
        config = RunConfig(model="test/plugin-no-weights", weights=str(weights), n=2, device="cpu")
        with pytest.raises(robustkit.RobustkitError, match="takes no weights file") as info:
            run_evaluation(config, db=tmp_path / "r.db", progress=False)
        message = str(info.value)
        assert message.endswith(f"drop weights={str(weights)!r}"), message
        assert "--" not in message, message
        from robustkit.runner import prepare

        with pytest.raises(robustkit.RobustkitError, match="; drop --weights$"):
            prepare(config)  # (as the CLI prepares a run: its text is as it was)
    finally:
        MODELS._entries.pop("test/plugin-no-weights")
