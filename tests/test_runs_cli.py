"""``robustkit runs``: listing the stored runs, showing one's report, deleting runs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from robustkit.cli import cli
from robustkit.store import Store

from .helpers import at_shard, interrupt
from .test_cli import assert_one_line_error


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A store with a finished FGSM run, and a PGD run interrupted after its first shard."""
    path = tmp_path / "results.db"
    common = ["--model", "mnist/lenet5", "--n", "8", "--batch-size", "4", "--no-progress"]
    done = run("evaluate", *common, "--attack", "fgsm", "--eps", "0.1", "--db", str(path))
    assert done.exit_code == 0, done.output
    real = at_shard(monkeypatch, 1, interrupt)
    stopped = run("evaluate", *common, "--attack", "pgd:steps=2", "--db", str(path))
    assert stopped.exit_code == 130, stopped.output
    monkeypatch.setattr("robustkit.evaluation.evaluate_shard", real)
    return path


def _listed(db, *args):
    result = run("runs", "list", "--db", str(db), "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_runs_are_listed_with_how_far_they_got(db):
    rows = _listed(db)
    assert [(r["attacks"], r["stored"], r["n"], r["status"]) for r in rows] == [
        (["fgsm"], 8, 8, "finished"),
        (["pgd:steps=2"], 4, 8, "running"),
    ]
    assert rows[0]["threat"] == "linf 0.1" and rows[0]["data"] == "mnist/test"
    assert [r["status"] for r in _listed(db, "--status", "running")] == ["running"]
    assert _listed(db, "CIFAR10/*") == [] and len(_listed(db, "MNIST/*")) == 2  # any case
    table = run("runs", "list", "--db", str(db)).output.splitlines()
    assert table[0].split()[:2] == ["run_id", "model"] and "4/8" in table[3]
    assert "no stored run" in run("runs", "list", "none/*", "--db", str(db)).output


def test_a_run_is_shown_by_a_start_of_its_id(db):
    rows = _listed(db)
    shown = run("runs", "show", rows[0]["run_id"][:6], "--db", str(db), "--format", "json")
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["run_id"] == rows[0]["run_id"] and list(report["attacks"]) == ["fgsm"]
    text = run("runs", "show", rows[0]["run_id"], "--db", str(db)).output
    assert text.startswith("model mnist/lenet5") and "fgsm" in text
    assert_one_line_error(run("runs", "show", "zzzz", "--db", str(db)), "no run 'zzzz'")
    assert_one_line_error(run("runs", "show", "zz", "--db", str(db)), "no run 'zz'")
    # a start of a stored id, too short to name one (it said "no run 'xy'" too)
    short = rows[0]["run_id"][:3]
    assert_one_line_error(
        run("runs", "show", short, "--db", str(db)), f"run id '{short}' is too short", "at least 4"
    )


def test_a_start_shared_by_two_runs_is_refused():
    from types import SimpleNamespace

    from robustkit.errors import InputError
    from robustkit.store import find_run

    ids = ["abcd1111aaaaaaaa", "abcd2222bbbbbbbb"]
    store = SimpleNamespace(path="r.db", runs=lambda: [{"run_id": i} for i in ids])
    assert find_run(store, "ABCD1") == ids[0] and find_run(store, ids[1]) == ids[1]
    # (an id pasted with a space or a newline around it was "no run")
    assert find_run(store, f" {ids[1]}\n") == ids[1] and find_run(store, "abcd1 ") == ids[0]
    with pytest.raises(InputError, match="start of 2 runs .*give more of it"):
        find_run(store, "abcd")


def test_deleting_runs_asks_first_and_removes_everything_stored(db):
    stopped = _listed(db, "--status", "running")[0]["run_id"]
    asked = run("runs", "delete", stopped[:8], "--db", str(db), input="n\n")
    assert asked.exit_code == 0 and "nothing deleted" in asked.output
    assert len(_listed(db)) == 2
    gone = run("runs", "delete", stopped, stopped[:5], "--db", str(db), "--yes")
    assert gone.exit_code == 0 and "deleted 1 run" in gone.output, gone.output
    assert [r["status"] for r in _listed(db)] == ["finished"]
    with Store.open(db) as store:
        assert store.samples(stopped) == [] and store.results(stopped) == []
        assert store.shards(stopped) == []
    assert_one_line_error(run("runs", "delete", stopped, "--db", str(db), "-y"), "no run")


def test_runs_of_a_missing_store_is_a_one_line_error(tmp_path):
    missing = tmp_path / "none.db"
    assert_one_line_error(run("runs", "list", "--db", str(missing)), "no results store")
    assert not missing.exists()


def test_a_run_deleted_while_it_is_computed_is_a_one_line_error(tmp_path, monkeypatch):
    """Another process deleting a run this one computes: its next shard ended in a sqlite3
    foreign-key traceback."""
    db = tmp_path / "results.db"

    def delete_every_run():
        with Store.open(db) as store:
            store.delete_runs([r["run_id"] for r in store.runs()])

    at_shard(monkeypatch, 1, delete_every_run)
    args = ["evaluate", "--model", "mnist/lenet5", "--n", "8", "--batch-size", "4"]
    result = run(*args, "--attack", "fgsm", "--no-progress", "--db", str(db))
    assert_one_line_error(result, "was deleted from", "rerun the command")


def test_a_run_deleted_during_its_sanity_checks_is_a_one_line_error(tmp_path, monkeypatch):
    """Deleted after its last shard, while its sanity checks ran: storing them ended in a
    sqlite3 "FOREIGN KEY constraint failed" traceback."""
    import robustkit.sanity as sanity

    db = tmp_path / "results.db"
    real = sanity.run_checks

    def checks_while_another_deletes(*args, **kwargs):
        with Store.open(db) as store:
            store.delete_runs([r["run_id"] for r in store.runs()])
        return real(*args, **kwargs)

    monkeypatch.setattr(sanity, "run_checks", checks_while_another_deletes)
    args = ["evaluate", "--model", "mnist/lenet5", "--n", "4", "--attack", "fgsm"]
    result = run(*args, "--no-progress", "--db", str(db))
    assert_one_line_error(result, "was deleted from", "rerun the command")


def test_an_unfinished_run_is_shown_as_one(db):
    """`runs show` of a run stopped early printed its figures over the samples stored as a
    finished run's, with nothing to say that half of them were missing."""
    finished, stopped = (r["run_id"] for r in _listed(db))
    shown = run("runs", "show", stopped, "--db", str(db), "--format", "json")
    report = json.loads(shown.output)
    assert (report["status"], report["n"], report["n_asked"]) == ("running", 4, 8)
    text = run("runs", "show", stopped, "--db", str(db)).output
    assert "UNFINISHED: 4 of 8 samples stored" in text, text
    assert "UNFINISHED" not in run("runs", "show", finished, "--db", str(db)).output


def test_a_run_with_no_shard_stored_says_so(tmp_path):
    """A run stopped before its first shard: its joint figure was explained as "no attack
    here has an ε" (FGSM has one) and its seconds read "nan"."""
    from robustkit.runner import RunConfig, prepare

    path = tmp_path / "results.db"
    prepared = prepare(RunConfig(model="mnist/lenet5", n=4, attacks=("fgsm",)))
    with Store.open(path) as store:
        store.start_run(prepared.run_id, prepared.fields)
    text = run("runs", "show", prepared.run_id, "--db", str(path)).output
    assert "UNFINISHED: 0 of 4 samples stored" in text, text
    assert "no sample stored yet" in text and "no attack here has an ε" not in text
    assert "nan" not in text


def test_a_run_of_correctly_classified_images_does_not_claim_a_range(tmp_path):
    """A correct_only run (the leaderboard presets' label-only runs) was shown as the range
    "[20, 23)" of images, where it held images 20, 21 and 23 (the model gets 22 wrong)."""
    from robustkit.runner import RunConfig, run_evaluation

    path = tmp_path / "results.db"
    config = RunConfig(model="cifar10/resnet4b-at", n=3, offset=20, correct_only=True)
    report = run_evaluation(config, db=path, progress=False)
    with Store.open(path) as store:
        assert json.loads(store.get_run(report["run_id"])["indices"]) == [20, 21, 23]
    text = run("runs", "show", report["run_id"], "--db", str(path)).output
    assert "[20, 23)" not in text and "first 3 correct from 20" in text, text


def test_another_batch_size_is_another_run_as_the_help_says(db):
    """Resuming an interrupted run with another --batch-size started a new run from scratch
    (shards are seeded by their index), which neither --help nor the README said."""
    common = ["--model", "mnist/lenet5", "--n", "8", "--no-progress", "--db", str(db)]
    again = run("evaluate", *common, "--batch-size", "8", "--attack", "pgd:steps=2")
    assert again.exit_code == 0, again.output
    rows = [(r["stored"], r["status"]) for r in _listed(db) if r["attacks"] == ["pgd:steps=2"]]
    assert rows == [(4, "running"), (8, "finished")]
    help_text = " ".join(run("evaluate", "--help").output.split())
    assert "another --batch-size starts another run, it does not resume this one" in help_text


def test_a_run_is_shown_while_another_process_writes_its_next_shard(tmp_path, monkeypatch):
    """`runs show` of a run being computed read its samples, shards and results in separate
    statements: a shard stored between two of them crashed it with a KeyError traceback."""
    from .fake_store import LINF, add_run

    path = tmp_path / "results.db"
    with Store.open(path) as store:
        add_run(store, "0123456789abcdef", {"pgd": (LINF, [(False, True, 0.1)] * 4)}, n=4)
        store.finish_run("0123456789abcdef", "running")
    real = Store.samples

    def samples_then_another_writes(self, run_id):
        rows = real(self, run_id)
        with Store.open(path) as other:  # the computing process stores its next shard
            other.write_shard(
                run_id, 1, 4, 8, 0.1, {"pgd": 0.1}, [(i, 0, 0) for i in range(4, 8)],
                [("pgd", i, 1, 0, 1, 0, 0.0, 0.0, 0.0, 10, 0, None, None) for i in range(4, 8)],
            )  # fmt: skip
        return rows

    monkeypatch.setattr(Store, "samples", samples_then_another_writes)
    shown = run("runs", "show", "0123", "--db", str(path), "--format", "json")
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["n"] == 4 and report["attacks"]["pgd"]["n"] == 4


def test_a_run_deleted_by_another_process_meanwhile_is_not_a_traceback(tmp_path, monkeypatch):
    """`runs delete` found the run, then read the rows it lists in other statements: a run
    another process deleted in between (the same command in another terminal) was a KeyError
    traceback."""
    from .fake_store import LINF, add_run

    path = tmp_path / "results.db"
    with Store.open(path) as store:
        add_run(store, "0123456789abcdef", {"pgd": (LINF, [(False, True, 0.1)] * 4)}, n=4)
    real = Store.sample_counts

    def counts_while_another_deletes(self):
        with Store.open(path) as other:
            other.delete_runs(["0123456789abcdef"])
        return real(self)

    monkeypatch.setattr(Store, "sample_counts", counts_while_another_deletes)
    result = run("runs", "delete", "0123", "--db", str(path), "--yes")
    assert result.exit_code == 0 and "deleted 0 runs" in result.output, result.output


def test_an_empty_listing_names_the_status_it_filtered_on(tmp_path):
    """`runs list --status running` over a store of finished runs said "no stored run of a
    model matching '*'", as if the store held none."""
    from .fake_store import LINF, add_run

    db = tmp_path / "r.db"
    with Store.open(db) as store:
        add_run(store, "a" * 16, {"fgsm": (LINF, [(False, True, 0.1)] * 4)}, model="mnist/lenet5")
    out = run("runs", "list", "--status", "running", "--db", str(db)).output.strip()
    assert out == "no running run of a model matching '*' (1 stored run in all)", out
    out = run("runs", "list", "cifar10/*", "--db", str(db)).output.strip()
    assert out == "no stored run of a model matching 'cifar10/*' (1 stored run in all)", out


def test_a_clean_accuracy_run_states_no_threat_model(tmp_path):
    """A run without --attack was headed "threat linf 0.3" (the data set's default ε, which
    nothing used) in its report and in `runs list`, as if it had been evaluated at it."""
    db = str(tmp_path / "r.db")
    args = ["evaluate", "--model", "mnist/lenet5", "--n", "2", "--db", db, "--no-progress"]
    report = run(*args)
    assert report.exit_code == 0, report.output
    assert "| threat none (clean accuracy only) |" in report.output, report.output
    (row,) = json.loads(run("runs", "list", "--db", db, "--format", "json").output)
    assert row["threat"] == "-" and row["attacks"] == []


def test_deleting_without_an_answer_or_with_ctrl_c_at_the_question(db, monkeypatch):
    """`runs delete ID` from a script (no --yes, its input closed) ended with click's
    "Aborted!" and exit status 1, which named neither that nothing was deleted nor --yes; a
    Ctrl-C at the question did the same, where every other Ctrl-C exits with 130."""
    import click

    stopped = _listed(db, "--status", "running")[0]["run_id"]
    closed = run("runs", "delete", stopped, "--db", str(db), input="")
    assert closed.exit_code == 2, closed.output
    last = closed.output.strip().splitlines()[-1]
    assert last.startswith("Error: no answer") and "nothing deleted" in last and "--yes" in last
    assert "Aborted" not in closed.output

    def ctrl_c(*args, **kwargs):  # as click.confirm takes a Ctrl-C
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise click.Abort() from None

    monkeypatch.setattr(click, "confirm", ctrl_c)
    stopped_now = run("runs", "delete", stopped, "--db", str(db))
    assert stopped_now.exit_code == 130, stopped_now.output
    assert stopped_now.output.strip().splitlines()[-1] == "interrupted: nothing deleted"
    assert len(_listed(db)) == 2


def test_an_unfinished_run_shows_the_command_that_resumes_it(db):
    """`runs show` of a stopped run said "rerun the run's command to resume it" but showed no
    command, though the store keeps it (the JSON report had none either)."""
    stopped = _listed(db, "--status", "running")[0]["run_id"]
    with Store.open(db) as store:
        command = store.get_run(stopped)["command"]
    assert command  # (sys.argv's: pytest's here)
    text = run("runs", "show", stopped, "--db", str(db)).output
    assert f"rerun its command to resume it: {command}" in " ".join(text.split()), text
    report = json.loads(run("runs", "show", stopped, "--db", str(db), "--format", "json").output)
    assert report["command"] == command


def test_a_data_file_is_named_without_a_split(tmp_path):
    """A run on --data d.npz was shown as "data /path/d.npz/test" (a path that does not
    exist: a data file has no split) in its report and in `runs list`."""
    import numpy as np

    from robustkit.data import load_dataset

    x, y = load_dataset("mnist", n=4)
    data = tmp_path / "d.npz"
    np.savez(data, x=x.numpy(), y=y.numpy())
    db = str(tmp_path / "r.db")
    args = ["evaluate", "--model", "mnist/lenet5", "--data", str(data), "--n", "2"]
    report = run(*args, "--attack", "fgsm", "--db", db, "--no-progress")
    assert report.exit_code == 0, report.output
    assert f"| data {data} [0, 2) |" in report.output, report.output
    (row,) = json.loads(run("runs", "list", "--db", db, "--format", "json").output)
    assert row["data"] == str(data)


def test_the_report_header_says_which_attacks_are_targeted(tmp_path):
    """`evaluate --attack cgba-h` (targeted by default, no --targeted) was headed "threat linf
    0.3", an untargeted threat model, above its "targeted" row; with an untargeted attack
    beside it the header must name the targeted one, not call the whole run either."""
    db = str(tmp_path / "r.db")
    common = ["--model", "mnist/lenet5", "--n", "2", "--db", db, "--no-progress"]
    alone = run("evaluate", "--attack", "cgba-h", "--queries", "20", *common)
    assert alone.exit_code == 0, alone.output
    assert "| threat linf 0.3 targeted |" in alone.output, alone.output
    mixed = run("evaluate", "--attack", "cgba-h", "--attack", "fgsm", "--queries", "20", *common)
    assert mixed.exit_code == 0, mixed.output
    assert "| threat linf 0.3 (targeted: cgba-h) |" in mixed.output, mixed.output
    plain = run("evaluate", "--attack", "fgsm", *common)
    assert "| threat linf 0.3 |" in plain.output, plain.output


def test_the_listing_says_which_runs_are_targeted(tmp_path):
    """`runs list` showed a targeted run (--targeted, or cgba-h, targeted by default) as its
    untargeted twin, "linf 0.3  pgd", where the report's header says "targeted": a user
    listing runs could not tell which was which. Its threat says it as the header does."""
    from .fake_store import CGBA, LINF, add_run, robust

    db = tmp_path / "r.db"
    with Store.open(db) as store:
        add_run(store, "a" * 16, {"pgd": (LINF, robust("rrff"))})
        add_run(store, "b" * 16, {"pgd": ({**LINF, "targeted": True}, robust("rrff"))})
        add_run(
            store,
            "c" * 16,
            {
                "cgba-h": ({**CGBA, "targeted": True}, robust("rrff")),
                "fgsm": ({**LINF, "targeted": False}, robust("rrff")),
            },
        )
    threats = [(r["run_id"][0], r["threat"]) for r in _listed(db)]
    assert threats == [
        ("a", "linf 0.3"),
        ("b", "linf 0.3 targeted"),
        ("c", "linf 0.3 (targeted: cgba-h)"),
    ]
    table = run("runs", "list", "--db", str(db)).output
    assert "linf 0.3 targeted" in table and "linf 0.3 (targeted: cgba-h)" in table, table
    deleting = run("runs", "delete", "bbbb", "--db", str(db), input="n\n").output
    assert "linf 0.3 targeted  pgd" in deleting, deleting


def test_a_run_stored_under_another_spelling_of_its_attack_is_resumed(tmp_path, monkeypatch):
    """Spellings of one attack are one run since 2026-11-29 (`pgd: steps=2` is the run of
    `pgd:steps=2`); a run stored before under the spelling typed (its label and id) must not be
    orphaned: the same command resumes it, under its id and label, not a new run."""
    import robustkit.specs as specs

    from .helpers import at_shard, interrupt

    db = str(tmp_path / "r.db")
    args = ["evaluate", "--model", "mnist/lenet5", "--n", "4", "--batch-size", "2"]
    args += ["--attack", "pgd: steps=2", "--attack", "fgsm", "--db", db, "--no-progress"]
    with monkeypatch.context() as old:  # the label as the code before made it: the text typed
        old.setattr(specs, "registered_spec", lambda spec, name: specs.as_typed(spec, name, {})[0])
        at_shard(old, 1, interrupt)
        assert run(*args).exit_code == 130
    (stored,) = _listed(tmp_path / "r.db")
    assert (stored["attacks"], stored["stored"]) == (["fgsm", "pgd: steps=2"], 2)  # (by name)
    resumed = run(*args, "--format", "json")
    assert resumed.exit_code == 0, resumed.output
    report = json.loads(resumed.output)
    assert report["run_id"] == stored["run_id"] and list(report["attacks"]) == stored["attacks"]
    (row,) = _listed(tmp_path / "r.db")
    assert (row["run_id"], row["stored"], row["status"]) == (stored["run_id"], 4, "finished")
    fresh = run(*args, "--fresh")  # (replaces that run, as --fresh does)
    assert fresh.exit_code == 0, fresh.output
    assert [r["run_id"] for r in _listed(tmp_path / "r.db")] == [stored["run_id"]]


def test_the_command_stored_to_resume_a_fresh_run_does_not_start_it_over(tmp_path, monkeypatch):
    """A run started with --fresh and stopped stored its command line with --fresh: `runs
    show` said "rerun its command to resume it: robustkit evaluate ... --fresh", which starts
    it over (its stored samples are replaced at the next shard), and the leaderboard quotes
    that command as the one that reproduces the run. The stored command leaves --fresh out
    (a value "--fresh" of another option stays)."""
    import sys

    from .helpers import at_shard, interrupt

    db = tmp_path / "r.db"
    argv = ["evaluate", "--model", "mnist/lenet5", "--n", "4", "--batch-size", "2"]
    argv += ["--fresh", "--attack", "fgsm", "--db", str(db), "--no-progress"]
    monkeypatch.setattr(sys, "argv", ["robustkit", *argv])
    at_shard(monkeypatch, 1, interrupt)
    assert run(*argv).exit_code == 130
    (stopped,) = _listed(db)
    text = " ".join(run("runs", "show", stopped["run_id"], "--db", str(db)).output.split())
    resume = " ".join(["robustkit", *argv]).replace(" --fresh", "")
    assert f"rerun its command to resume it: {resume})" in text, text

    from robustkit.cli_evaluate import stored_command

    args = ["evaluate", "--model", "m", "--save-adv", "--fresh", "--fresh", "--seed=1"]
    assert stored_command(args) == "robustkit evaluate --model m --save-adv --fresh --seed=1"


def test_a_run_stored_with_fresh_in_its_command_before_is_shown_with_the_resuming_one(tmp_path):
    """A run stored before the command was kept without --fresh (or by another program) still
    has it: `runs show` of it, stopped early, names the command without it."""
    from .fake_store import LINF, add_run, robust

    db = tmp_path / "r.db"
    command = "robustkit evaluate --model m --fresh --attack pgd --save-adv 'a b.npz'"
    with Store.open(db) as store:
        add_run(
            store, "a" * 16, {"pgd": (LINF, robust("rf"))}, command=command, finished=False, n=2
        )
    text = " ".join(run("runs", "show", "aaaa", "--db", str(db)).output.split())
    resume = "robustkit evaluate --model m --attack pgd --save-adv 'a b.npz'"
    assert f"rerun its command to resume it: {resume})" in text, text
