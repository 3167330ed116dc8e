"""Notebook views on hand-made stores (no model runs): the per-sample frame keeps the float norm
and reproduces the reported success rates, empty selections keep their columns, unknown run ids
and attack labels are errors naming the valid ones, decision curves end at the budget, and the
robust-accuracy plot shows exactly the runs the leaderboard shows."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import torch  # noqa: E402

import robustkit.results as rr  # noqa: E402
from robustkit import plots  # noqa: E402
from robustkit.errors import InputError, RobustkitError  # noqa: E402
from robustkit.store import Store  # noqa: E402

from .fake_store import CGBA, LINF, add_run, robust  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Each test's figures are closed after it (pyplot keeps them: past 20 it warns)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "r.db")
    yield s
    s.close()


def test_results_frame_keeps_the_float_norm_and_reproduces_the_success_rate(store):
    """`norm` was overwritten with the run's threat-model name ('linf'); a label-only attack
    given an ε succeeds only within it, as `robustkit evaluate` reports (success_rate 0.5, while
    `success` is true for every sample)."""
    traj = [[5, 3.0], [30, 0.4]]
    cgba_rows = [(True, True, 0.4, traj), (True, False, 0.3, traj)]
    cgba_rows += [(True, True, 0.8, traj), (True, True, 1.5, traj)]
    add_run(
        store,
        "r1",
        {"fgsm": (LINF, robust("rfff")), "cgba": ({**CGBA, "eps": 0.35}, cgba_rows)},
        eps=0.3,
    )
    res = rr.Results(store)
    frame = res.results("r1")
    assert frame["norm"].dtype == float and set(frame["threat_norm"]) == {"linf"}
    cgba = frame[frame["attack"] == "cgba"]
    assert list(cgba["norm"]) == [0.4, 0.3, 0.8, 1.5]
    assert cgba["success"].all() and list(cgba["success_within_eps"]) == [False, True, False, False]
    summary = res.summary("r1")["attacks"]
    for label, rows in frame[frame["attacked"]].groupby("attack"):
        assert rows["success_within_eps"].mean() == pytest.approx(summary[label]["success_rate"])
    assert list(frame[frame["attack"] == "fgsm"]["threat_eps"]) == [0.3] * 4
    assert list(frame.columns) == rr.RESULT_COLUMNS


def test_empty_selections_keep_their_columns(store, tmp_path):
    """A run evaluated with sanity=False has no checks: `checks().query("flagged")` (the
    notebook's pattern) raised KeyError on the column-less frame; so did an empty store."""
    res = rr.Results(store)
    assert res.checks().query("flagged").empty
    assert res.runs[["run_id", "model", "eps", "robust_accuracy"]].empty
    assert res.samples()["clean_correct"].empty
    assert res.results().groupby(["threat_eps", "attack"])["robust"].mean().empty
    for frame, cols in (
        (res.runs, rr.RUN_COLUMNS),
        (res.samples(), rr.SAMPLE_COLUMNS),
        (res.results(), rr.RESULT_COLUMNS),
        (res.checks(), rr.CHECK_COLUMNS),
    ):
        assert frame.empty and list(frame.columns) == cols
    add_run(store, "r1", {"fgsm": (LINF, robust("rf"))}, n=2, checks=False)
    assert res.checks("r1").query("flagged").empty
    assert list(res.checks("r1").columns) == rr.CHECK_COLUMNS


def test_unknown_run_ids_and_attack_labels_are_errors_naming_the_valid_ones(store):
    add_run(
        store,
        "r1",
        {"pgd:steps=3": (LINF, robust("rf")), "cgba": (CGBA, [(True, False, 1.0, [[4, 1.0]])] * 2)},
        n=2,
    )
    res = rr.Results(store)
    for call in (res.results, res.samples, res.checks, res.summary):
        with pytest.raises(InputError, match="no run 'nope'.*r1"):
            call("nope")
    with pytest.raises(InputError, match="no run 'nope'.*r1"):
        res.decision_curve("nope", "cgba")
    with pytest.raises(InputError, match="no attack 'hsja'.*cgba"):
        res.decision_curve("r1", "hsja")
    with pytest.raises(InputError, match="no attack 'fgsm'.*pgd:steps=3"):
        res.results("r1", "fgsm")
    # labels match in any case
    assert set(res.results("r1", "PGD:Steps=3")["attack"]) == {"pgd:steps=3"}
    assert len(res.decision_curve("r1", "CGBA")) > 0
    # a white-box attack has no decision curve (it returned NaNs)
    with pytest.raises(InputError, match="not decision-based.*cgba"):
        res.decision_curve("r1", "pgd:steps=3")


def test_decision_curve_ends_at_the_budget(store):
    """The default budgets ended at the last query that improved a distance (30 here), not at
    the attack's budget (max_queries = 60); the last row equals the run's report at 60."""
    traj = [[3, 5.0], [30, 1.0]]
    add_run(store, "r1", {"cgba": ({**CGBA, "eps": 2.0}, [(True, True, 1.0, traj)] * 3)}, n=3)
    res = rr.Results(store)
    curve = res.decision_curve("r1", "cgba")
    assert curve["queries"].iloc[-1] == 60 and curve["queries"].is_monotonic_increasing
    report = res.summary("r1")["attacks"]["cgba"]["decision"]
    assert report["budgets"][-1] == 60
    assert curve["median_l2"].iloc[-1] == report["median_l2"][-1]
    assert curve["success_rate_at_eps"].iloc[-1] == report["success_rate_at_eps"][-1]
    # budgets and ε as the budget functions take them; none past the attack's budget
    at = res.decision_curve("r1", "cgba", budgets=np.array([30, 60]), eps="4/2")
    assert at["queries"].tolist() == [30, 60] and at["success_rate_at_eps"].tolist() == [1.0, 1.0]
    with pytest.raises(InputError, match="budget 61 is above the 60 queries 'cgba' ran with"):
        res.decision_curve("r1", "cgba", budgets=[30, 61])
    with pytest.raises(InputError, match="budgets must be non-negative whole numbers"):
        res.decision_curve("r1", "cgba", budgets=[float("nan")])


def _lines(fig) -> dict[str, dict[str, list]]:
    return {
        ax.get_title(): {
            line.get_label(): list(zip(line.get_xdata(), line.get_ydata(), strict=True))
            for line in ax.get_lines()
        }
        for ax in fig.axes
    }


def test_robust_accuracy_plot_shows_what_the_leaderboard_shows(store):
    """Each point is the leaderboard's run for its (norm, ε, model, defenses). It once plotted
    targeted-only and unfinished runs, a run's worst case where it lacked the named attack, a
    minimum-norm attack at the run's ε, one line for defended and undefended runs and L2 and
    L∞ ε on one axis."""
    add_run(store, "a", {"fgsm": (LINF, robust("rrrf")), "pgd": (LINF, robust("rrff"))}, eps=0.1)
    add_run(store, "a-small", {"fgsm": (LINF, robust("ff"))}, eps=0.1, n=2)  # fewer samples
    add_run(store, "b", {"fgsm": (LINF, robust("rfff"))}, eps=0.3)  # no pgd
    add_run(store, "t", {"pgd": ({**LINF, "targeted": True}, robust("rrrr"))}, eps=0.2)
    add_run(store, "u", {"fgsm": (LINF, robust("rrrr"))}, eps=0.25, finished=False)
    add_run(store, "mn", {"cgba": (CGBA, [(True, False, 9.0, [[5, 9.0]])] * 4)}, eps=0.15)
    add_run(
        store,
        "d",
        {"fgsm": (LINF, robust("rrrr")), "pgd": (LINF, robust("rrrr"))},
        eps=0.1,
        defenses={"bit-depth:bits=4": {"bits": 4}},
    )
    add_run(store, "l2", {"pgd": ({"norm": "l2"}, robust("rrff"))}, norm="l2", eps=1.0)
    res = rr.Results(store)

    worst = _lines(plots.robust_accuracy_vs_eps(res))
    assert worst == {
        "MNIST, L2": {"m": [(1.0, 50.0)]},
        "MNIST, L∞": {
            "m": [(0.1, 50.0), (0.3, 25.0)],
            "m + bit-depth:bits=4": [(0.1, 100.0)],
        },
    }
    pgd = _lines(plots.robust_accuracy_vs_eps(res, attack="PGD", norm="inf"))  # as --norm reads
    assert pgd == {"MNIST, L∞": {"m": [(0.1, 50.0)], "m + bit-depth:bits=4": [(0.1, 100.0)]}}
    with pytest.raises(RobustkitError, match="attack 'cgba'"):
        plots.robust_accuracy_vs_eps(res, attack="cgba")
    with pytest.raises(RobustkitError, match="give norm="):
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
        plots.robust_accuracy_vs_eps(res, ax=ax)
    with pytest.raises(RobustkitError, match="model 'other'.*models with one: m"):
        plots.robust_accuracy_vs_eps(res, model="other")


def test_robust_accuracy_plot_of_an_empty_store_is_a_clear_error(store):
    with pytest.raises(RobustkitError, match="no stored run has an attack with an ε"):
        plots.robust_accuracy_vs_eps(rr.Results(store))


def test_adversarial_grid_of_no_images_is_a_clear_error():
    x = torch.zeros(0, 1, 28, 28)
    with pytest.raises(RobustkitError, match="at least one image"):
        plots.adversarial_grid(x, x)


def test_adversarial_grid_takes_the_arrays_of_a_saved_adversarial_file(tmp_path):
    """``--save-adv`` writes NumPy arrays; plotting them beside the clean images was a
    TypeError (``x_adv - x`` of an array and a tensor). What is no images is a one-line error."""
    x = torch.rand(3, 1, 28, 28)
    path = tmp_path / "adv.npz"
    np.savez(path, x_adv=x.flip(-1).numpy(), y=np.arange(3), adv_pred=np.arange(1, 4))
    saved = np.load(path)
    fig = plots.adversarial_grid(x, saved["x_adv"], saved["y"], saved["adv_pred"])
    assert len(fig.axes) == 9
    assert len(plots.adversarial_grid(x.numpy(), x.numpy(), n=2).axes) == 6
    with pytest.raises(RobustkitError, match="x_adv must be N×C×H×W images .* shaped \\(3,\\)"):
        plots.adversarial_grid(x, [0.1, 0.2, 0.3])
    with pytest.raises(RobustkitError, match="x must be N×C×H×W images .*got str"):
        plots.adversarial_grid("images", x)


def test_median_l2_plot_takes_one_attack_label_as_text(store):
    """``attacks="cgba"`` plots that attack (it was read letter by letter: "no attack 'c'")."""
    traj = [[3, 5.0], [30, 1.0]]
    add_run(store, "r1", {"cgba": (CGBA, [(True, True, 1.0, traj)] * 3)}, n=3)
    res = rr.Results(store)
    for attacks in ("cgba", ["cgba"], "CGBA"):  # labelled as stored, whatever the case
        ax = plots.median_l2_vs_queries(res, "r1", attacks=attacks).axes[0]
        assert [line.get_label() for line in ax.get_lines()] == ["cgba"]


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(1, 28, 28),  # one image, not a batch of one
        torch.rand(2, 28, 28, 1),  # channels last
        torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8),  # pixels, not [0, 1]
        torch.rand(2, 32, 32, 3).numpy(),  # channels last, as an array
    ],
)
def test_adversarial_grid_refuses_what_is_no_batch_of_images_in_one_line(bad):
    """A tensor was taken unchecked (one C×H×W image failed in ``permute``, uint8 pixels showed
    a blank grid) and channels-last arrays failed in matplotlib ("Invalid shape")."""
    with pytest.raises(RobustkitError, match="x must be N×C×H×W images .* 1 or 3 channels"):
        plots.adversarial_grid(bad, bad)


def test_adversarial_grid_labels_too_few_or_without_a_class_name_are_one_line_errors():
    """Fewer labels than images shown, or a label past ``classes``, was an IndexError."""
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(RobustkitError, match="y has 2 labels for 4 images"):
        plots.adversarial_grid(x, x, y=[1, 2])
    with pytest.raises(RobustkitError, match="adv_pred has label 9, but classes names 2"):
        plots.adversarial_grid(x, x, adv_pred=torch.tensor([0, 1, 9, 0]), classes=["a", "b"])
    fig = plots.adversarial_grid(x, x, np.array([1, 0, 1, 0]), [0, 1, 1, 0], classes=["a", "b"])
    assert [ax.get_title() for ax in fig.axes[:4]] == ["b", "a", "b", "a"]
    assert [ax.get_title() for ax in fig.axes[4:8]] == ["a", "b", "b", "a"]
    assert len(plots.adversarial_grid(x, x, y=[1, 2], n=2).axes) == 6  # enough for n


def test_the_runs_frame_reads_one_snapshot_of_the_store(tmp_path, monkeypatch):
    """`Results.runs` listed the runs, then read each: a run deleted by another process (a
    --fresh rerun, `runs delete`) in between raised "no run" in the notebook."""
    import robustkit.runner as runner

    db = tmp_path / "r.db"
    with Store.open(db) as store:
        for rid in ("first", "second"):
            add_run(store, rid, {"fgsm": (LINF, robust("rf"))}, n=2)
    real = runner.summarize

    def summarize_while_another_deletes(store, run_id):
        with Store.open(db) as other:
            other.delete_runs(["second"])
        return real(store, run_id)

    monkeypatch.setattr(runner, "summarize", summarize_while_another_deletes)
    with rr.open(db) as res:
        assert list(res.runs["run_id"]) == ["first", "second"]


def test_attack_eps_is_a_float_column_nan_without_an_eps_in_every_selection(store):
    """A minimum-norm attack without an ε has no ``attack_eps``: it was None (an object column)
    in a run of such attacks alone, NaN beside an attack with an ε, and both across runs, where
    comparing it with ``norm`` (``query("norm <= attack_eps")``) raised a TypeError."""
    traj = [[5, 3.0], [30, 0.4]]
    add_run(store, "r1", {"cgba": (CGBA, [(True, True, 0.4, traj)] * 2)}, eps=0.3, n=2)
    add_run(store, "r2", {"fgsm": (LINF, robust("rf")), "cgba": (CGBA, robust("ff"))}, n=2)
    res = rr.Results(store)
    for frame in (res.results("r1"), res.results("r2"), res.results()):
        assert frame["attack_eps"].dtype == float
        assert frame[frame["attack"] == "cgba"]["attack_eps"].isna().all()
    within = res.results().query("norm <= attack_eps")
    assert list(within["attack"]) == ["fgsm", "fgsm"]


def test_the_results_frame_names_each_run_s_defenses(store):
    """Review: the per-sample frame had no defenses column, so grouping it by model mixed a
    defended model's rows with the undefended model's."""
    add_run(store, "plain", {"fgsm": (LINF, robust("rrff"))}, eps=0.1)
    add_run(
        store,
        "defended",
        {"fgsm": (LINF, robust("rrrr"))},
        eps=0.1,
        defenses={"bit-depth:bits=4": {"bits": 4}},
    )
    frame = rr.Results(store).results()
    by = frame.groupby(["model", "defenses"])["robust"].mean().to_dict()
    assert by == {("m", ""): 0.5, ("m", "bit-depth:bits=4"): 1.0}


def test_every_method_taking_a_run_id_takes_a_start_of_it_as_runs_show_does(store):
    """`robustkit runs show` takes a unique start of a run id (4 characters or more); the
    notebook API took whole ids only ("no run 'abcd1'"). Each method now takes the same starts,
    with the same one-line errors for one too short or shared by several runs."""
    ids = ["abcd1111aaaaaaaa", "abcd2222bbbbbbbb"]
    for rid in ids:
        add_run(
            store,
            rid,
            {"pgd": (LINF, robust("rf")), "cgba": (CGBA, [(True, False, 1.0, [[4, 1.0]])] * 2)},
            n=2,
        )
    res = rr.Results(store)
    assert set(res.results("ABCD1")["run_id"]) == {ids[0]}
    assert set(res.results("abcd2", "CGBA")["run_id"]) == {ids[1]}
    assert set(res.samples("abcd1")["run_id"]) == {ids[0]}
    assert set(res.checks("abcd1")["run_id"]) == {ids[0]}
    assert res.summary("abcd1")["run_id"] == ids[0]
    assert res.decision_curve("abcd1", "cgba").equals(res.decision_curve(ids[0], "cgba"))
    for call in (res.results, res.samples, res.checks, res.summary):
        with pytest.raises(InputError, match=r"^run id 'abcd' is the start of 2 runs .*more of it"):
            call("abcd")
        with pytest.raises(InputError, match=r"^run id 'ab' is too short .*at least 4"):
            call("ab")
    with pytest.raises(InputError, match="start of 2 runs"):
        res.decision_curve("abcd", "cgba")


def test_a_run_id_or_attack_label_that_is_not_text_is_a_one_line_error(store):
    """A notebook passes a column where one value is meant: ``res.results(runs.run_id)`` (or a
    filtered one-row Series) ended in pandas' "truth value of a Series is ambiguous", an array
    in an SQLite binding error, and an attack label given as a list or a number (here and in the
    plots) in AttributeError/TypeError tracebacks. Each is now an InputError naming what to pass."""
    add_run(
        store,
        "r1",
        {"fgsm": (LINF, robust("rf")), "cgba": (CGBA, [(True, False, 1.0, [[4, 1.0]])] * 2)},
        n=2,
    )
    res = rr.Results(store)
    ids = res.runs["run_id"]
    for bad in (ids, ids.to_numpy(), 5):
        for call in (res.results, res.samples, res.checks, res.summary):
            with pytest.raises(InputError, match=r"^a run id is text .*iloc\[0\]"):
                call(bad)
        with pytest.raises(InputError, match=r"^a run id is text"):
            res.decision_curve(bad, "cgba")
    with pytest.raises(InputError, match=r"^a run id is text .*got a Series of 1 value"):
        res.results(ids[ids == "r1"])
    for call in (res.summary, lambda r: res.decision_curve(r, "cgba")):
        with pytest.raises(InputError, match=r"^a run id is text .*got None"):
            call(None)
    for bad in (["fgsm"], 5):
        with pytest.raises(InputError, match=r"^an attack label is text .*cgba, fgsm"):
            res.results("r1", bad)
        with pytest.raises(InputError, match=r"^an attack label is text .*cgba, fgsm"):
            res.decision_curve("r1", bad)
    with pytest.raises(InputError, match=r"^an attack label is text .*cgba, fgsm"):
        res.decision_curve("r1", None)
    with pytest.raises(InputError, match=r"^an attack label is text"):
        plots.median_l2_vs_queries(res, "r1", attacks=5)
    with pytest.raises(InputError, match=r"^an attack label is text"):
        plots.median_l2_vs_queries(res, "r1", attacks=["cgba", 5])
    for kw in ({"attack": ["fgsm"]}, {"attack": 5}, {"model": 5}):
        with pytest.raises(InputError, match=r"^an? (attack label|model name) is text"):
            plots.robust_accuracy_vs_eps(res, **kw)


def _misclassified_run(store: Store, rid: str, n: int = 2) -> None:
    """A finished CGBA run whose ``n`` images the model got wrong: none attacked."""
    import json

    from robustkit.store import dumps

    specs = {"cgba": {"name": "cgba", "params": {**CGBA, "eps": None}}}
    store.start_run(
        rid,
        {
            "config": "{}",
            "model": "m",
            "weights_sha256": None,
            "dataset": "mnist",
            "split": "test",
            "indices": json.dumps(list(range(n))),
            "norm": "l2",
            "eps": 1.0,
            "attacks": dumps(specs),
            "defenses": dumps({}),
            "seed": 0,
            "device": "cpu",
            "versions": "{}",
            "training": "standard",
            "command": "robustkit evaluate --model m",
        },
    )
    rows = [("cgba", i, 0, 0, 0, 1, 0.0, 0.0, 0.0, 0, 0, "[]", None) for i in range(n)]
    store.write_shard(rid, 0, 0, n, 0.1, {"cgba": 0.1}, [(i, 0, 1) for i in range(n)], rows)
    store.finish_run(rid)


def test_median_l2_plot_says_when_there_is_no_curve_to_draw(store):
    """A run whose images the model all got wrong (nothing attacked: every median NaN), or
    where fewer than half of them were fooled at every budget (every median inf), drew an empty
    axis with the attack in its legend and no word of why. Nothing attacked is now a one-line
    error; a curve with no finite point says so in its legend."""
    _misclassified_run(store, "mis")
    nothing = [(False, True, 0.0, [])] * 2 + [(True, False, 2.0, [[50, 2.0]])]
    add_run(store, "hard", {"cgba": (CGBA, nothing)}, n=3)
    res = rr.Results(store)
    with pytest.raises(RobustkitError, match=r"^run mis: cgba attacked no image .*2 images"):
        plots.median_l2_vs_queries(res, "mis")
    fields = {k: v for k, v in store.get_run("mis").items() if k not in ("run_id", "started")}
    store.start_run("new", {**fields, "status": "running", "finished": None})  # no shard yet
    with pytest.raises(RobustkitError, match=r"^run new has no stored results yet \(running"):
        plots.median_l2_vs_queries(res, "new")
    ax = plots.median_l2_vs_queries(res, "hard").axes[0]
    (line,) = ax.get_lines()
    assert np.isinf(line.get_ydata()).all()
    assert ax.get_legend().get_texts()[0].get_text() == (
        "cgba (fewer than half of 3 images fooled within 60 queries)"
    )


def test_median_l2_plot_names_the_defended_model_in_its_title(store):
    """The title named the model only: the curve of a model behind a defense looked like the
    undefended model's (the robust-accuracy plot names the defenses in its legend)."""
    traj = [[3, 5.0], [30, 1.0]]
    defenses = {"bit-depth:bits=4": {"bits": 4}}
    add_run(store, "d", {"cgba": (CGBA, [(True, True, 1.0, traj)] * 3)}, n=3, defenses=defenses)
    add_run(store, "p", {"cgba": (CGBA, [(True, True, 1.0, traj)] * 3)}, n=3)
    res = rr.Results(store)
    assert plots.median_l2_vs_queries(res, "d").axes[0].get_title() == "m\n+ bit-depth:bits=4"
    assert plots.median_l2_vs_queries(res, "p").axes[0].get_title() == "m"


def test_median_l2_plot_keeps_a_long_defended_title_inside_the_figure(store):
    """A zoo name and a defense's full text in one title line ran off the figure's right edge
    ("cifar10/resnet20 + input-noise:sigma=0.02,votes" in a saved figure)."""
    traj = [[3, 5.0], [30, 1.0]]
    defenses = {"input-noise:sigma=0.0313725490196,votes=25": {"sigma": 8 / 255, "votes": 25}}
    add_run(
        store,
        "d",
        {"cgba": (CGBA, [(True, True, 1.0, traj)] * 3)},
        n=3,
        model="cifar10/resnet20",
        defenses=defenses,
    )
    assert _inside(plots.median_l2_vs_queries(rr.Results(store), "d"))


def test_frames_keep_their_column_types_on_any_store(store):
    """Numbers and times were typeless where no row set them: an empty store's ``started`` had
    no ``.dt`` (AttributeError) and its counts and norms were objects, and a store of
    minimum-norm runs alone (no worst case) had a ``robust_accuracy`` of None, an object column
    whose ``.round(2)`` raised TypeError. Every frame now has the same number, boolean and time
    types whatever the store holds."""
    res = rr.Results(store)
    frames = {
        "runs": lambda: res.runs,
        "samples": res.samples,
        "results": res.results,
        "checks": res.checks,
    }
    empty = {name: get() for name, get in frames.items()}
    assert empty["runs"]["started"].dt.date.empty
    traj = [[4, 1.0]]
    add_run(store, "mn", {"cgba": (CGBA, [(True, False, 1.0, traj), (False, True, 0.0, [])])}, n=2)
    runs = res.runs
    assert runs["robust_accuracy"].dtype == float and runs["robust_accuracy"].isna().all()
    assert runs["robust_accuracy"].round(2).isna().all()
    add_run(store, "w", {"fgsm": (LINF, robust("rf"))}, n=2, finished=False)
    full = {name: get() for name, get in frames.items()}
    for name, frame in full.items():
        typed = [c for c in frame.columns if frame[c].dtype.kind in "biufM"]
        assert typed, name
        for col in typed:
            assert empty[name][col].dtype == frame[col].dtype, (name, col)


def test_median_l2_plot_shows_a_median_found_at_one_budget_only(store):
    """Where more than half of the images are fooled only within the last budget, the median
    is finite at that one point and inf before: a line without markers drew nothing there (a
    lone point has no segment), though the legend named the attack."""
    late = [(True, False, 2.0, [[59, 2.0]])] * 2 + [(False, True, 0.0, [])]
    add_run(store, "late", {"cgba": (CGBA, late)}, n=3)
    ax = plots.median_l2_vs_queries(rr.Results(store), "late").axes[0]
    (line,) = ax.get_lines()
    assert np.isfinite(line.get_ydata()).sum() == 1
    assert line.get_marker() not in ("None", "", " ", None)


@pytest.mark.parametrize("n", ["8", 2.5, None, True])
def test_adversarial_grid_n_that_is_no_count_is_a_one_line_error(n):
    """``n="8"`` or ``n=None`` failed comparing it with 0 (TypeError), ``n=2.5`` deep in
    matplotlib ("Number of columns must be a positive integer")."""
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(RobustkitError, match=r"^adversarial_grid: n is the number of images"):
        plots.adversarial_grid(x, x, n=n)


@pytest.mark.parametrize(
    "labels", [["a", "b", "c", "d"], 3, torch.tensor(3), torch.tensor([[1, 2], [3, 4]]), [0.5] * 4]
)
def test_adversarial_grid_labels_that_are_no_class_indices_are_one_line_errors(labels):
    """Class names given as ``y``, one number, a 0-d or a 2-D tensor ended in ValueError or
    TypeError tracebacks from ``int()`` or iteration (and 0.5 was shown as class 0)."""
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(RobustkitError, match=r"^adversarial_grid: y must be class indices"):
        plots.adversarial_grid(x, x, y=labels)


def test_plots_given_no_opened_store_say_what_to_pass(store, tmp_path):
    """The plots take the opened store (``robustkit.results.open(db)``); a path to it, the
    Store or a frame of it (``res.runs``) ended in AttributeError ('str' object has no
    attribute 'store')."""
    add_run(store, "r1", {"cgba": (CGBA, [(True, True, 1.0, [[3, 1.0]])] * 2)}, n=2)
    res = rr.Results(store)
    for bad in (str(tmp_path / "r.db"), tmp_path / "r.db", store, res.runs):
        for plot in (plots.robust_accuracy_vs_eps, lambda r: plots.median_l2_vs_queries(r, "r1")):
            with pytest.raises(RobustkitError, match=r"^the plots take the opened results .*open"):
                plot(bad)


def test_a_closed_results_store_is_a_one_line_error(tmp_path):
    """``with rr.open(db) as res:`` closes the store at the block's end; reading it in a later
    notebook cell ended in sqlite3.ProgrammingError ("Cannot operate on a closed database")."""
    db = tmp_path / "r.db"
    with Store.open(db) as store:
        add_run(store, "r1", {"cgba": (CGBA, [(True, True, 1.0, [[3, 1.0]])] * 2)}, n=2)
    with rr.open(db) as res:
        assert len(res.runs) == 1
    calls = [
        lambda: res.runs,
        res.samples,
        res.results,
        res.checks,
        lambda: res.summary("r1"),
        lambda: res.decision_curve("r1", "cgba"),
        lambda: plots.robust_accuracy_vs_eps(res),
        lambda: plots.median_l2_vs_queries(res, "r1"),
    ]
    for call in calls:
        with pytest.raises(RobustkitError, match=r"^the results store .*r\.db is closed.*open\("):
            call()
    res.close()  # closing twice is no error


def test_robust_accuracy_plot_marks_the_points_the_leaderboard_marks_unreliable(store):
    """A run its sanity checks flag (gradient masking, as behind bit-depth without BPDA) is
    marked UNRELIABLE in every leaderboard, but the plot drew its point like any
    other. Flagged points now carry a mark of their own, named in the legend."""
    add_run(store, "ok", {"fgsm": (LINF, robust("rrff"))}, eps=0.1)
    add_run(store, "ok3", {"fgsm": (LINF, robust("rfff"))}, eps=0.3)
    add_run(store, "masked", {"fgsm": (LINF, robust("rrff"))}, eps=0.2, checks=False)
    store.write_checks("masked", [("gradient_masking", True, "input gradients are zero")])
    lines = _lines(plots.robust_accuracy_vs_eps(rr.Results(store)))["MNIST, L∞"]
    assert lines["m"] == [(0.1, 50.0), (0.2, 50.0), (0.3, 25.0)]
    flagged = [k for k in lines if k.startswith("flagged")]
    assert flagged == ["flagged by sanity checks (unreliable)"]
    assert lines[flagged[0]] == [(0.2, 50.0)]
    plain = _lines(plots.robust_accuracy_vs_eps(rr.Results(store), norm="linf"))
    assert len(plain["MNIST, L∞"]) == 2  # one flagged-mark entry per panel, not per point


def _inside(fig) -> bool:
    """Whether every axis label and title of ``fig`` lies inside it (as saved, no bbox)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    w, h = fig.canvas.get_width_height()
    texts = [t for ax in fig.axes for t in (ax.xaxis.label, ax.yaxis.label, ax.title)]
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_text()]
    return all(b.x0 >= 0 and b.y0 >= 0 and b.x1 <= w and b.y1 <= h for b in boxes)


def test_plots_saved_with_savefig_keep_their_axis_labels(store):
    """``fig.savefig("plot.png")`` (no bbox_inches, as outside a notebook) cut the x label
    ("ε (L∞)", "queries") off the bottom of both plots: the figures were not laid out."""
    add_run(store, "a", {"fgsm": (LINF, robust("rrff"))}, eps=0.1)
    add_run(store, "b", {"fgsm": (LINF, robust("rfff"))}, eps=0.3)
    add_run(store, "l2", {"pgd": ({"norm": "l2"}, robust("rrff"))}, norm="l2", eps=1.0)
    add_run(store, "d", {"cgba": (CGBA, [(True, True, 1.0, [[3, 5.0], [30, 1.0]])] * 3)}, n=3)
    res = rr.Results(store)
    assert _inside(plots.robust_accuracy_vs_eps(res))
    assert _inside(plots.median_l2_vs_queries(res, "d"))


def test_the_runs_frame_names_defenses_as_the_results_frame_does(store):
    """``Results.runs`` held each run's defenses as a list, so the natural table of robust
    accuracy by model and ε, ``runs.pivot_table(index=["model", "defenses"], columns="eps",
    ...)`` (or any groupby on defenses), raised TypeError: unhashable type: 'list'. It is now
    the text the per-sample frame has ('' for none), one key for both frames."""
    bits = {"bit-depth:bits=4": {"bits": 4}}
    add_run(store, "p1", {"fgsm": (LINF, robust("rrff"))}, eps=0.1)
    add_run(store, "p3", {"fgsm": (LINF, robust("rfff"))}, eps=0.3)
    add_run(store, "d1", {"fgsm": (LINF, robust("rrrr"))}, eps=0.1, defenses=bits)
    res = rr.Results(store)
    runs = res.runs
    table = runs.pivot_table(
        index=["model", "defenses"], columns="eps", values="robust_accuracy"
    ).to_dict("index")
    assert table[("m", "")] == {0.1: 0.5, 0.3: 0.25}
    assert table[("m", "bit-depth:bits=4")][0.1] == 1.0
    per_sample = res.results().drop_duplicates("run_id").set_index("run_id")["defenses"]
    assert runs.set_index("run_id")["defenses"].to_dict() == per_sample.to_dict()


def test_the_runs_frame_tells_runs_of_correct_images_only_and_of_another_split(store):
    """A run of the correctly classified images only (``correct_only``, as the example
    notebook's CGBA run) showed clean accuracy 1.0 like a model right on every image, and a
    run on the train split looked like a test-set run: the frame had neither fact, which the
    leaderboard uses to leave such runs out of its robust-accuracy tables."""
    add_run(store, "all", {"fgsm": (LINF, robust("rf"))}, n=2)
    add_run(store, "sel", {"fgsm": (LINF, robust("rf"))}, n=2, config={"correct_only": True})
    add_run(store, "train", {"fgsm": (LINF, robust("rf"))}, n=2, split="train")
    runs = rr.Results(store).runs.set_index("run_id")
    assert runs["correct_only"].to_dict() == {"all": False, "sel": True, "train": False}
    assert runs["split"].to_dict() == {"all": "test", "sel": "test", "train": "train"}
    assert runs["correct_only"].dtype == bool
    assert rr.Results(store).runs.columns.tolist() == rr.RUN_COLUMNS


def test_adversarial_grid_hands_matplotlib_arrays_not_tensors():
    """The images went to imshow as tensors, whose __array__ takes no ``copy``: NumPy 2 warned
    (DeprecationWarning, an error under ``-W error`` and in NumPy's future) on every image."""
    import warnings

    x = torch.rand(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.adversarial_grid(x, x.flip(-1))
        plots.adversarial_grid(x[:, :1], x[:, :1].flip(-1))


def test_robust_accuracy_plot_labels_an_attack_as_stored(store):
    """``attack="PGD"`` plotted the stored ``pgd`` but labelled the axis "PGD", as typed."""
    add_run(store, "a", {"pgd": (LINF, robust("rrff"))}, eps=0.1)
    fig = plots.robust_accuracy_vs_eps(rr.Results(store), attack="PGD")
    assert fig.axes[0].get_ylabel() == "robust accuracy (%), pgd"


def test_decision_curve_says_the_eps_its_success_rate_is_at(store):
    """The default ε of ``success_rate_at_eps`` (the attack's own, else the run's L2 ε) was
    nowhere in the frame: a notebook printing it could not tell at which ε the rate was."""
    traj = [[3, 5.0], [30, 1.0]]
    add_run(store, "own", {"cgba": ({**CGBA, "eps": 0.5}, [(True, True, 1.0, traj)] * 2)}, n=2)
    add_run(store, "run", {"cgba": (CGBA, [(True, True, 1.0, traj)] * 2)}, n=2, norm="l2", eps=2.0)
    add_run(store, "none", {"cgba": (CGBA, [(True, True, 1.0, traj)] * 2)}, n=2)
    res = rr.Results(store)
    assert res.decision_curve("own", "cgba").attrs["eps"] == 0.5
    assert res.decision_curve("run", "cgba").attrs["eps"] == 2.0
    assert res.decision_curve("run", "cgba", eps="1/2").attrs["eps"] == 0.5
    assert res.decision_curve("none", "cgba").attrs["eps"] is None


def test_the_stage_column_is_whole_numbers_missing_where_an_attack_has_no_stages(store):
    """``stage`` (the stage of ``auto`` that fooled a sample, -1 for none) read -1.0 and 0.0
    in a column of objects beside the None of the other attacks' rows (float64 in a frame of
    ``auto`` alone), as ``Evaluation.to_frame``'s ``fooled_by`` once read a target class
    8.0: it is a nullable integer column, <NA> where the attack has no stages, on any
    selection and on an empty store."""
    res = rr.Results(store)
    assert res.results()["stage"].dtype == "Int64"
    add_run(store, "a", {"auto": (LINF, robust("fr"))}, n=2, stages={"auto": [0, -1]})
    add_run(store, "b", {"fgsm": (LINF, robust("rf"))}, n=2)
    for frame in (res.results(), res.results("a"), res.results(attack="auto")):
        assert frame["stage"].dtype == "Int64"
    frame = res.results()
    assert frame.set_index("attack")["stage"].loc["auto"].tolist() == [0, -1]
    assert frame[frame["attack"] == "fgsm"]["stage"].isna().all()
    assert res.results("b")["stage"].dtype == "Int64"


def test_adversarial_grid_shows_half_precision_images():
    """bfloat16 images (a model run in bfloat16) ended in a TypeError traceback from
    ``.numpy()`` ("Got unsupported ScalarType BFloat16"); half-precision images are shown as
    float32 ones are."""
    x = torch.rand(2, 3, 8, 8)
    for dtype in (torch.bfloat16, torch.float16):
        fig = plots.adversarial_grid(x.to(dtype), x.flip(-1).to(dtype))
        shown = fig.axes[0].get_images()[0].get_array()
        assert np.allclose(shown, x[0].permute(1, 2, 0).numpy(), atol=1e-2)


@pytest.mark.parametrize(
    ("which", "scaled", "got"),
    [
        ("x", lambda x: x * 255, r"\[0, 255\]"),  # pixel values as floats
        ("x_adv", lambda x: (x - 0.5) / 0.25, r"\[-2, 2\]"),  # normalised images
        ("x_adv", lambda x: x + float("nan"), "NaN"),
    ],
)
def test_adversarial_grid_refuses_images_outside_the_unit_box_in_one_line(which, scaled, got):
    """Images outside [0, 1] were clipped without a word: float pixels in [0, 255] showed a
    white grid, normalised images a saturated one, NaN images an empty one."""
    x = torch.zeros(2, 1, 4, 4)
    x[:, :, 0, 0], x[:, :, -1, -1] = 1.0, 0.0
    args = {"x": x, "x_adv": x.clone()}
    args[which] = scaled(args[which])
    with pytest.raises(
        RobustkitError, match=rf"^adversarial_grid: {which} must lie in \[0, 1\].*{got}"
    ):
        plots.adversarial_grid(**args)


def test_robust_accuracy_plot_says_why_the_stored_runs_at_an_eps_are_not_plotted(store):
    """Runs at a few ε that the plot leaves out (as the leaderboard's robust tables do: of
    correctly classified images only, of targeted attacks only, on another split, label-only
    attacks alone) met "run robustkit evaluate with --attack and --eps at a few ε first",
    which those runs had done; the error says how many runs there are and why each is left
    out, and what run is plotted."""
    res = rr.Results(store)
    add_run(
        store, "c1", {"fgsm": (LINF, robust("rf"))}, n=2, eps=0.1, config={"correct_only": True}
    )
    add_run(
        store, "c2", {"fgsm": (LINF, robust("rf"))}, n=2, eps=0.3, config={"correct_only": True}
    )
    targeted = {"norm": "linf", "targeted": True}
    add_run(store, "t", {"pgd": (targeted, robust("rf"))}, n=2)
    add_run(store, "s", {"fgsm": (LINF, robust("rf"))}, n=2, split="train")
    add_run(store, "d", {"cgba": (CGBA, robust("rf"))}, n=2, norm="l2", eps=2.0)
    add_run(store, "u", {"fgsm": (LINF, robust("rf"))}, n=2, finished=False)
    with pytest.raises(RobustkitError) as info:
        plots.robust_accuracy_vs_eps(res)
    text = str(info.value)
    assert "\n" not in text and "no stored run has an attack with an ε" in text
    assert "first" not in text  # (they were run)
    for reason in (
        "of its 5 finished runs, 2 of only the correctly classified images (--correct-only)",
        "1 of targeted attacks only",
        "1 on the train split",
        "1 of label-only attacks only",
        "1 unfinished",
        "untargeted white-box attack",
    ):
        assert reason in text, reason
