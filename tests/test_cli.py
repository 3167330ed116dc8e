"""The command line: JSON output, and one-line errors without tracebacks for user mistakes."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from robustkit.cli import cli
from robustkit.store import Store
from robustkit.zoo import model_info

from .conftest import WEIGHTS
from .helpers import (
    at_shard,
    full_stdout,
    interrupt,
    switchable_model_file,
    unpickling_checkpoint,
)


def run(*args, env=None):
    result = CliRunner().invoke(cli, list(args), env=env)
    return result


def assert_one_line_error(result, *needles):
    assert result.exit_code == 2, result.output  # a user's mistake, as click's usage errors
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    ), result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_version_and_help():
    assert "robustkit" in run("version").output
    for cmd in ("models", "attacks", "defenses", "evaluate"):
        result = run(cmd, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_evaluate_clean_accuracy_json():
    result = run(
        "evaluate",
        "--model",
        "cifar10/resnet20",
        "--n",
        "1000",
        "--format",
        "json",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["clean_accuracy"] == pytest.approx(0.915)
    assert report["n"] == 1000 and report["data"] == "cifar10" and report["attacks"] == {}


def test_json_keeps_no_value_apart_from_infinity():
    """Strict JSON: a median distance where most images got no adversarial example is "inf",
    a figure that does not exist (no joint robust accuracy without an ε) is null."""
    result = run(
        "evaluate", "--model", "mnist/cnn-tiny-at", "--n", "6", "--attack", "cgba",
        "--queries", "2", "--format", "json", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert report["attacks"]["cgba"]["decision"]["median_l2"] == ["inf"]
    assert report["robust_accuracy"] is None
    # nor per attack: a minimum-norm attack judges no robustness (the API's NaN, not 0%)
    assert report["attacks"]["cgba"]["robust_accuracy"] is None


def test_evaluate_with_attack_table_and_save_adv(tmp_path):
    out = tmp_path / "adv.npz"
    result = run(
        "evaluate",
        "--model",
        "mnist/cnn-tiny-at",
        "--n",
        "8",
        "--attack",
        "cgba:max_queries=60",
        "--save-adv",
        str(out),
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "clean accuracy" in result.output and "cgba" in result.output
    # A label-only attack without an ε is minimum-norm: no joint figure, and why.
    assert "joint (worst-case) robust accuracy: - (no attack here has an ε" in result.output
    assert result.output.rstrip().endswith(f"adversarial examples saved to {out}")
    saved = np.load(out)
    assert saved["x_adv"].shape == (8, 1, 28, 28) and saved["index"].tolist() == list(range(8))
    # ... whose examples are what it found (they were the clean images): each is misclassified,
    # at the distance it reports, and the rest are the clean images
    import torch

    from robustkit.data import load_dataset
    from robustkit.zoo import load_model

    x, y = load_dataset("mnist", n=8)
    found = saved["attack"] == "cgba:max_queries=60"  # the label: its spec
    assert found.sum() >= 4 and set(saved["attack"][~found]) <= {""}
    with torch.no_grad():
        pred = load_model("mnist/cnn-tiny-at")(torch.from_numpy(saved["x_adv"])).argmax(1).numpy()
    assert (pred == saved["adv_pred"]).all() and (pred[found] != y.numpy()[found]).all()
    l2 = (torch.from_numpy(saved["x_adv"]) - x).flatten(1).norm(dim=1).numpy()
    assert np.allclose(saved["l2"], l2, atol=1e-5) and (l2[found] > 0).all()
    assert (l2[~found] == 0).all() and "target" not in saved


def test_an_unused_eps_is_refused_for_new_runs_only(tmp_path):
    """An explicit --eps that no attack uses is refused, but a run stored while it was ignored
    (same identity: the ε is part of it) still resumes rather than being lost."""
    from dataclasses import replace

    from robustkit.runner import RunConfig, prepare

    db = tmp_path / "r.db"
    args = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "4", "--attack", "cgba"]
    args += ["--queries", "20", "--eps", "0.1", "--db", str(db), "--no-progress"]
    assert_one_line_error(run(*args), "--eps 0.1 is used by no attack here")
    config = RunConfig(model="mnist/cnn-tiny-at", n=4, attacks=("cgba",), queries=20, eps="0.1")
    stored = prepare(config)
    old_config = {k: v for k, v in json.loads(stored.fields["config"]).items() if k != "eps_given"}
    with Store.open(db) as store:  # as the code before the refusal stored it
        store.start_run(stored.run_id, {**stored.fields, "config": json.dumps(old_config)})
    resumed = run(*args, "--format", "json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.output)["run_id"] == stored.run_id
    assert_one_line_error(run(*args, "--fresh"), "--eps 0.1 is used by no attack here")
    # the same answer whatever the store holds: --eps 0.3 (MNIST's default L∞ ε) is the same
    # identity as no --eps, and a run stored without it did not make it welcome
    default = [a if a != "0.1" else "0.3" for a in args]
    assert run(*[a for a in args if a not in ("--eps", "0.1")]).exit_code == 0
    assert_one_line_error(run(*default), "--eps 0.3 is used by no attack here")
    # a NumPy seed is a seed (a raw TypeError from random.seed before)
    assert prepare(replace(config, seed=np.int64(1))).config.seed == 1


def test_save_adv_gives_the_targets_of_targeted_examples(tmp_path):
    out = tmp_path / "adv.npz"
    result = run(
        "evaluate", "--model", "mnist/cnn-tiny-at", "--n", "8", "--norm", "l2", "--eps", "4",
        "--queries", "60", "--attack", "cgba-h", "--attack", "cgba", "--save-adv", str(out),
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = np.load(out)
    by_h = saved["attack"] == "cgba-h"
    assert by_h.any() and (saved["attack"][~by_h] != "cgba-h").all()
    assert (saved["target"][by_h] == saved["adv_pred"][by_h]).all()
    assert (saved["target"][~by_h] == -1).all() and (saved["l2"][by_h] <= 4 + 1e-5).all()


def test_targeted_attacks_are_marked_and_their_joint_figure_is_an_upper_bound():
    """A targeted attack's "robust" samples are those it left correct while aiming only at
    their targets (it never tried the other classes): the threat says so per attack (cgba-h is targeted by default, also in an untargeted run) and in the
    header, by the attacks that are targeted (not by --targeted: cgba-h alone was headed
    "threat l2 2", untargeted); a joint figure made of targeted attacks alone says it is an
    upper bound, with the fix."""
    common = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "8", "--norm", "l2"]
    common += ["--queries", "60", "--no-progress"]
    alone = run(*common, "--attack", "cgba-h")
    assert alone.exit_code == 0, alone.output
    assert "threat l2 2 targeted |" in alone.output and "l2 2 targeted" in alone.output
    assert "is an upper bound; add an untargeted attack" in alone.output
    both = run(*common, "--attack", "cgba-h", "--attack", "cgba", "--format", "json")
    report = json.loads(both.output)
    assert report["threat_model"]["targeted"] is False
    threats = {label: a["threat"] for label, a in report["attacks"].items()}
    assert threats == {"cgba-h": "l2 2 targeted", "cgba": "l2 2"}
    mixed = run(*common, "--attack", "cgba-h", "--attack", "cgba").output
    assert "upper bound" not in mixed and "threat l2 2 (targeted: cgba-h) |" in mixed
    targeted = run(*common, "--attack", "cgba", "--targeted")
    assert targeted.exit_code == 0, targeted.output
    assert "threat l2 2 targeted |" in targeted.output
    assert "is an upper bound; drop --targeted" in targeted.output


def test_the_targeted_upper_bound_note_says_what_it_counts():
    """The note said a targeted joint figure "counts only misclassifications as their
    targets", beside a targeted PGD at 0% robust accuracy and 87.5% success: any
    misclassification counts (a sample sent to another class than its target too)."""
    args = ["evaluate", "--model", "mnist/lenet5", "--n", "8", "--attack", "pgd:steps=3"]
    result = run(*args, "--targeted", "--no-progress", "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)["attacks"]["pgd:steps=3"]
    assert row["robust_accuracy"] + row["success_rate"] < 1  # misses of the target count
    text = run(*args, "--targeted", "--no-progress").output
    assert "is an upper bound; drop --targeted" in text, text
    assert "only misclassifications as their targets" not in text
    assert "any misclassification it reached counts" in text


def test_interrupt_while_loading_the_model_exits_130_like_the_rest(monkeypatch):
    """A Ctrl-C before the run (loading the model, here) ended with click's "Aborted!" and exit
    status 1, and 130 once shards ran: one status for one cause."""
    import robustkit.runner as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "prepare", interrupted)
    result = run("evaluate", "--model", "mnist/cnn-tiny-at", "--n", "5", "--no-progress")
    assert result.exit_code == 130, result.output
    assert result.output.strip() == "interrupted"


def test_interrupt_keeps_the_finished_shards_and_says_how_to_resume(monkeypatch):
    args = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "20", "--batch-size", "10"]
    args += ["--attack", "fgsm", "--seed", "7", "--no-progress"]
    real = at_shard(monkeypatch, 1, interrupt)
    result = run(*args)
    assert result.exit_code == 130
    assert "interrupted: 1 of 2 shards of run" in result.output
    assert result.output.strip().endswith("rerun the same command to resume")
    computed: list[int] = []

    def recorded(*shard_args):
        computed.append(shard_args[6])  # the shard's index
        return real(*shard_args)

    monkeypatch.setattr("robustkit.evaluation.evaluate_shard", recorded)
    resumed = run(*args, "--format", "json")
    assert resumed.exit_code == 0 and json.loads(resumed.output)["n"] == 20
    assert computed == [1]  # the stored shard is not computed again


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--model", "cifar10/resnet21"], ["unknown model 'cifar10/resnet21'", "did you mean"]),
        (["--model", "cifar10/resnet20", "--n", "20000"], ["has 10000 samples"]),
        (
            ["--model", "cifar10/resnet20", "--offset", "20000", "--n", "5"],
            ["--offset 20000 is past the end of cifar10/test", "use an offset below 10000"],
        ),
        (["--model", "cifar10/resnet20", "--device", "tpu"], ["unknown device 'tpu'"]),
        (["--model", "cifar10/resnet20", "--eps", "-1", "--n", "5"], ["eps must be a positive"]),
        (["--model", "cifar10/resnet20", "--norm", "l1"], ["unknown norm 'l1'"]),
        (["--model", "cifar10/resnet20", "--attack", "cgba:bogus=1"], ["no parameter 'bogus'"]),
        (["--model", "cifar10/resnet20", "--attack", "nope"], ["unknown attack 'nope'"]),
        (
            ["--model", "cifar10/resnet20", "--attack", "apgd-t", "--targeted"],
            ["attack 'apgd-t' has no targeted mode; drop --targeted or that attack"],
        ),
        (["--model", "cifar10/resnet20", "--attack", "fgsm:steps=3"], ["no parameter 'steps'"]),
        (
            ["--model", "cifar10/resnet20", "--queries", "0"],
            ["queries (--queries) must be a positive"],
        ),
        (
            ["--model", "cifar10/resnet20", "--attack", "cgba", "--eps", "8/255"],
            ["--eps 8/255 is used by no attack here", "give --norm l2", "or drop --eps"],
        ),
        (["--model", "cifar10/resnet20", "--defense", "bit-depth:bits=0"], ["bits must be"]),
        (
            ["--model", "cifar10/resnet20", "--defense", "bit-depth:bits=1.5"],
            ["bits must be a whole number from 1 to 16, got 1.5"],
        ),
        (
            ["--model", "cifar10/resnet20", "--defense", "bit-depth:bpda=maybe"],
            ["defense 'bit-depth': bpda must be true or false, got 'maybe'"],
        ),
        (
            ["--model", "cifar10/resnet20", "--attack", "pgd:early_stop=2"],
            ["attack 'pgd': early_stop must be true or false, got 2"],
        ),
        # an attack in another norm than the run's once got the run's L∞ ε (8/255) as its L2 ε
        (
            ["--model", "cifar10/resnet20", "--attack", "pgd:norm=l2,steps=5"],
            ["attack 'pgd' runs in l2 but the run's ε (8/255) is one of linf", "--norm l2 --eps"],
        ),
        (
            ["--model", "cifar10/resnet20", "--attack", "fgsm", "--attack", "pgd:norm=l2,eps=0.5"],
            ["is set to l2 ε=0.5 but the run's threat model is linf ε=8/255", "a run of its own"],
        ),
        (
            ["--model", "cifar10/resnet20", "--attack", "fgsm:eps=16/255"],
            ["is set to linf ε=16/255 but the run's threat model is linf ε=8/255"],
        ),
        (
            ["--model", "cifar10/resnet20", "--defense", "input-noise", "--defense", "input-noise"],
            ["defense 'input-noise' is given more than once"],
        ),
        (
            ["--model", "cifar10/resnet20", "--defense", "BIT-DEPTH:bits=4"]
            + ["--defense", "bit-depth:bits=3"],
            ["defense 'bit-depth' is given more than once"],
        ),
        # read as 8/(255/2) = 16/255 once; an ε of 8 (for 8/255) made its own leaderboard table
        (["--model", "cifar10/resnet20", "--eps", "8/255/2"], ["such as 0.03 or 8/255"]),
        (["--model", "cifar10/resnet20", "--eps", "8"], ["wider than the [0, 1] box", "8/255"]),
        (["--model", "cifar10/resnet20", "--attack", "pgd:steps=3,steps=4"], ["given twice"]),
        (["--model", "cifar10/resnet20", "--attack", "pgd:seed=1.9"], ["seed must be a whole"]),
        # MNIST's 1×28×28 images went through the 3-channel normalization by broadcasting
        (
            ["--model", "cifar10/resnet20", "--data", "mnist", "--n", "5"],
            ["cifar10/resnet20 was trained on cifar10 but --data mnist", "(--data cifar10)"],
        ),
        (["--model", "cifar10/resnet20", "--data", "/tmp"], ["data file /tmp is a directory"]),
        (["--model", "cifar10/resnet20", "--db", "/proc/r.db"], ["cannot create the results"]),
    ],
)
def test_evaluate_user_errors(args, needles):
    assert_one_line_error(run("evaluate", "--no-progress", *args), *needles)


def test_errors_in_a_user_model_file_are_one_line_naming_the_line(tmp_path):
    src = tmp_path / "net.py"
    src.write_text(
        "import torch\n"
        "def cifar_sized():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 10))\n"
        "def broken():\n"
        "    raise RuntimeError('boom')\n"
    )
    (tmp_path / "bad.py").write_text("x = 1\nraise ValueError('bad import')\n")
    common = ["evaluate", "--data", "mnist", "--n", "4", "--attack", "fgsm", "--no-progress"]
    # MNIST images into a model for CIFAR-10-sized ones: caught before any work (nothing is
    # stored), white-box too
    db = tmp_path / "results.db"
    assert_one_line_error(
        run(*common, "--model", f"{src}:cifar_sized", "--db", str(db)),
        "the model cannot classify images shaped (1, 28, 28)",
        "pass images of the size and channels the model expects",
    )
    with Store.open(db) as store:
        assert store.runs() == []
    assert_one_line_error(
        run(*common, "--model", f"{src}:broken"),
        f"{src}:broken() raised RuntimeError: boom at {src} line 5",
    )
    bad = tmp_path / "bad.py"
    assert_one_line_error(
        run(*common, "--model", f"{bad}:build"),
        f"importing {bad} raised ValueError: bad import at {bad} line 2",
    )


def test_a_model_that_raises_in_a_later_shard_is_one_line_and_resumes(tmp_path, monkeypatch):
    """A user's model that raised while attacking shard 2 (a bug for some inputs, a GPU out of
    memory) ended in a traceback that did not say the finished shards are kept: now one line
    naming the exception and its line in the model file, how many shards are stored, and that
    the same command resumes; it does, to the numbers of a run that never failed."""
    src = switchable_model_file(
        tmp_path / "flaky.py", "FLAKY", "raise RuntimeError('flaky forward')"
    )
    # from the third shard on the model raises
    real = at_shard(monkeypatch, 2, lambda: monkeypatch.setenv("FLAKY", "1"))
    db = tmp_path / "results.db"
    args = ["evaluate", "--model", f"{src}:net", "--data", "mnist", "--n", "16"]
    args += ["--batch-size", "4", "--attack", "fgsm", "--no-progress", "--db", str(db)]
    result = run(*args)
    assert_one_line_error(
        result,
        f"raised RuntimeError: flaky forward at {src} line 11",
        "2 of 4 shards of run",
        f"are stored in {db}",
        "rerun the same command to resume",
    )
    monkeypatch.setattr("robustkit.evaluation.evaluate_shard", real)
    monkeypatch.delenv("FLAKY")
    resumed = run(*args, "--format", "json")
    assert resumed.exit_code == 0, resumed.output
    whole = run(*args[:-1], str(tmp_path / "whole.db"), "--format", "json")
    first, second = json.loads(resumed.output), json.loads(whole.output)
    for report in (first, second):
        del report["db"], report["attacks"]["fgsm"]["seconds"]
    assert first == second and first["n"] == 16


def test_a_robustkit_error_in_a_later_shard_says_what_is_stored(tmp_path, monkeypatch):
    """Found by review: a model returning NaN on shard 3 was one line that said nothing of the
    shards already stored (nor that --fresh again would delete them); it says both now, and an
    error before any shard is stored is as it was."""
    src = switchable_model_file(tmp_path / "nan.py", "NAN", "out * float('nan')")
    at_shard(monkeypatch, 2, lambda: monkeypatch.setenv("NAN", "1"))
    db = tmp_path / "results.db"
    args = ["evaluate", "--model", f"{src}:net", "--data", "mnist", "--n", "16"]
    args += ["--batch-size", "4", "--attack", "fgsm", "--no-progress"]
    result = run(*args, "--db", str(db), "--fresh")
    assert_one_line_error(
        result,
        "NaN or infinite",
        "2 of 4 shards of run",
        f"are stored in {db}: fix that and rerun the same command without --fresh to resume",
    )
    # NaN from the first shard on: nothing stored, nothing to say about it
    first = run(*args, "--db", str(tmp_path / "other.db"))
    assert first.exit_code == 2 and "NaN or infinite" in first.output
    assert "shards of run" not in first.output


def test_an_own_model_file_whose_name_is_not_utf8_is_evaluated_and_stored(tmp_path):
    """Found by review: a model file named b'bad\\xff.py' (POSIX allows any bytes; Python
    decodes them to lone surrogates) crashed with a UnicodeEncodeError traceback, first in
    naming its module, then in storing the run. It runs, and the store shows the name with
    the byte escaped."""
    name = os.fsencode(tmp_path) + b"/bad\xff.py"
    try:
        with open(name, "w") as fh:
            fh.write(
                "import torch\n\ndef build():\n    torch.manual_seed(0)\n"
                "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))\n"
            )
    except OSError:  # a file system that takes only UTF-8 names (macOS)
        pytest.skip("this file system refuses a file name that is not UTF-8")
    args = ["evaluate", "--model", f"{os.fsdecode(name)}:build", "--data", "mnist", "--n", "4"]
    args += ["--attack", "fgsm", "--no-progress", "--db", str(tmp_path / "r.db")]
    for _ in range(2):  # a new run, then a resume of it
        result = run(*args, "--format", "json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["model"] == f"{tmp_path}/bad\\xff.py:build" and report["n"] == 4
    with Store.open(tmp_path / "r.db") as store:
        assert len(store.runs()) == 1


def test_a_multi_line_error_of_an_own_model_file_is_one_line(tmp_path):
    """Found by review: an exception with a multi-line message, raised by the user's model
    file while importing it or by its factory, gave a multi-line error."""
    src = tmp_path / "net.py"
    src.write_text(
        "def multi():\n    raise RuntimeError('first line\\nsecond line\\nthird')\n"
        "def bare():\n    raise RuntimeError\n"
    )
    (tmp_path / "bad.py").write_text("raise ValueError('\\n  bad import\\n  details')\n")
    common = ["evaluate", "--data", "mnist", "--n", "4", "--no-progress"]
    result = run(*common, "--model", f"{src}:multi")
    assert_one_line_error(result, f"{src}:multi() raised RuntimeError: first line at {src} line 2")
    assert "second line" not in result.output
    assert_one_line_error(
        run(*common, "--model", f"{src}:bare"), f"{src}:bare() raised RuntimeError at {src} line 4"
    )
    bad = tmp_path / "bad.py"
    result = run(*common, "--model", f"{bad}:build")
    assert_one_line_error(result, f"importing {bad} raised ValueError: bad import at {bad} line 1")
    assert "details" not in result.output


def test_npz_labels_that_do_not_fit_are_one_line_errors(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    np.savez(tmp_path / "short.npz", x=x, y=np.arange(4))
    np.savez(tmp_path / "classes.npz", x=x, y=np.arange(5) + 20)
    common = ["evaluate", "--model", "cifar10/resnet20", "--n", "5", "--no-progress"]
    assert_one_line_error(
        run(*common, "--data", str(tmp_path / "short.npz")),
        "'y' must be one whole-number label per image of 'x' (5 images)",
    )
    db = tmp_path / "results.db"
    assert_one_line_error(
        run(*common, "--data", str(tmp_path / "classes.npz"), "--attack", "cgba", "--db", str(db)),
        "labels must lie in 0..9 (the model has 10 classes), got 20",
    )
    with Store.open(db) as store:
        assert store.runs() == []


def test_unavailable_cuda_device():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run("evaluate", "--model", "cifar10/resnet20", "--device", "cuda:0")
    assert_one_line_error(result, "not available", "--device cpu")


def test_missing_weights_and_bad_sha(tmp_path):
    info = model_info("mnist/lenet5")
    env = {"ROBUSTKIT_WEIGHTS": str(tmp_path), "ROBUSTKIT_OFFLINE": "1"}
    result = run("evaluate", "--model", "mnist/lenet5", "--n", "5", env=env)
    assert_one_line_error(result, info["file"], "not found", "ROBUSTKIT_WEIGHTS")
    bad = tmp_path / info["file"]
    shutil.copy(WEIGHTS / "MadryCNN_no_maxpool_tiny.pt", bad)
    result = run("evaluate", "--model", "mnist/lenet5", "--n", "5", env=env)
    assert_one_line_error(result, "sha256 mismatch", "was not used")
    assert bad.exists()  # the user's file is left for them to inspect


def test_data_directory_without_data(tmp_path):
    from robustkit import data

    data._CACHE.clear()
    env = {"ROBUSTKIT_DATA": str(tmp_path), "ROBUSTKIT_OFFLINE": "1"}
    result = run("evaluate", "--model", "mnist/lenet5", "--n", "5", env=env)
    assert_one_line_error(result, "mnist/test not found", "ROBUSTKIT_DATA")
    data._CACHE.clear()


def test_save_adv_after_resume_recomputes_in_memory(tmp_path):
    db, first, second = tmp_path / "r.db", tmp_path / "a.npz", tmp_path / "b.npz"
    args = [
        "evaluate",
        "--model",
        "mnist/cnn-tiny-at",
        "--n",
        "20",
        "--batch-size",
        "10",
        "--attack",
        "pgd:steps=5",
        "--db",
        str(db),
        "--no-progress",
    ]
    assert run(*args, "--save-adv", str(first)).exit_code == 0
    result = run(*args, "--save-adv", str(second), "--format", "json")
    assert result.exit_code == 0, result.output
    a, b = np.load(first), np.load(second)
    assert np.array_equal(a["x_adv"], b["x_adv"]) and np.array_equal(a["adv_pred"], b["adv_pred"])


def test_a_rewritten_npz_is_another_run_not_a_resume(tmp_path):
    """A data file is identified by its contents: the same path with other images once resumed
    the stored run and reported its numbers, with nothing recomputed."""
    from robustkit.data import load_dataset

    x, y = load_dataset("mnist", "test", n=10)
    path, db = tmp_path / "d.npz", tmp_path / "r.db"
    args = ["evaluate", "--model", "mnist/cnn-tiny-at", "--data", str(path), "--n", "10"]
    args += ["--attack", "fgsm", "--db", str(db), "--format", "json", "--no-progress"]
    np.savez(path, x=(x.numpy() * 255).round().astype(np.uint8), y=y.numpy())
    first = run(*args)
    assert first.exit_code == 0, first.output
    np.savez(path, x=(x.numpy() * 255).round().astype(np.uint8), y=(y.numpy() + 1) % 10)
    second = run(*args)
    assert second.exit_code == 0, second.output
    a, b = json.loads(first.output), json.loads(second.output)
    assert a["run_id"] != b["run_id"]
    assert a["clean_accuracy"] >= 0.8 and b["clean_accuracy"] <= 0.2


def test_names_in_another_case_are_the_same_run(tmp_path):
    """Names match in any case; the run stores the registered spelling, so MNIST/... and PGD are
    the run of mnist/... and pgd, not a second one."""
    db = str(tmp_path / "r.db")
    common = ["evaluate", "--n", "6", "--db", db, "--format", "json", "--no-progress"]
    a = run(*common, "--model", "mnist/cnn-tiny-at", "--attack", "pgd:steps=2")
    b = run(*common, "--model", "MNIST/CNN-tiny-AT", "--attack", "PGD:steps=2")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    ra, rb = json.loads(a.output), json.loads(b.output)
    assert ra["run_id"] == rb["run_id"] and list(rb["attacks"]) == ["pgd:steps=2"]


def test_defenses_are_applied_and_identified_in_the_order_given(tmp_path):
    """The first --defense wraps the model first; the two orders are two runs (the run id once
    sorted them, so one order resumed the other's results), reported in that order, each by its
    registered name."""
    db = str(tmp_path / "r.db")
    common = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "6", "--db", db]
    common += ["--format", "json", "--no-progress", "--attack", "fgsm"]
    noise, depth = ["--defense", "input-noise:sigma=0.3,votes=3"], ["--defense", "BIT-DEPTH:bits=2"]
    a = run(*common, *noise, *depth)
    b = run(*common, *depth, *noise)
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    ra, rb = json.loads(a.output), json.loads(b.output)
    assert ra["run_id"] != rb["run_id"]
    noise_spec, depth_spec = "input-noise:sigma=0.3,votes=3", "bit-depth:bits=2,bpda=false"
    assert ra["defenses"] == [noise_spec, depth_spec]
    assert rb["defenses"] == [depth_spec, noise_spec]
    # one configuration, however it is written (defaults included or not, in any order)
    for spelling in ("bit-depth:bpda=false,bits=2", "bit-depth:bits=2,bpda=false"):
        c = run(*common, *noise, "--defense", spelling)
        assert json.loads(c.output)["run_id"] == ra["run_id"], c.output


def test_a_data_file_that_is_not_an_npz_or_has_no_images(tmp_path):
    """A corrupt or truncated file gave zipfile's traceback, a text file numpy's advice to
    unpickle it, an empty one an offset error ('use an offset below 0'); --split, which a
    data file has no use for, made another run of the same images."""
    good = tmp_path / "good.npz"
    np.savez(good, x=np.random.rand(4, 3, 32, 32).astype("float32"), y=np.arange(4))
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04garbage")
    (tmp_path / "trunc.npz").write_bytes(good.read_bytes()[:300])
    (tmp_path / "text.npz").write_text("hello\n")
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 3, 32, 32), "float32"), y=np.zeros(0, int))
    common = ["evaluate", "--no-progress", "--model", "cifar10/resnet20", "--n", "2", "--data"]
    for name in ("corrupt", "trunc", "text"):
        assert_one_line_error(
            run(*common, str(tmp_path / f"{name}.npz")), "is not a complete zip archive", "savez"
        )
    assert_one_line_error(run(*common, str(tmp_path / "empty.npz")), "holds no images")
    assert_one_line_error(run(*common, str(good), "--split", "train"), "drop --split")


def test_an_edited_model_file_is_another_run(tmp_path):
    """An own model was known by its 'file.py:factory' name alone: after an edit the same
    command reused the old results (8% clean where the new model gets 14%)."""
    src = tmp_path / "own.py"
    body = "import torch\nfrom torch import nn\n\ndef build():\n    torch.manual_seed({})\n"
    body += "    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))\n"
    db = str(tmp_path / "r.db")
    args = ["evaluate", "--no-progress", "--model", f"{src}:build", "--data", "cifar10"]
    args += ["--n", "50", "--db", db, "--format", "json"]
    src.write_text(body.format(1))
    first = json.loads(run(*args).output)
    again = json.loads(run(*args).output)
    src.write_text(body.format(2))
    edited = json.loads(run(*args).output)
    assert again["run_id"] == first["run_id"] and edited["run_id"] != first["run_id"]
    assert edited["clean_accuracy"] != first["clean_accuracy"]


def test_a_model_or_data_file_spelled_another_way_is_the_same_run(tmp_path, monkeypatch):
    """A model file and a data file were known by their paths as typed, besides their
    contents: ./own.py:build and own.py:build (or a copy elsewhere) were two runs, and the
    same command from another directory started over. The contents (and the factory) decide
    now; another factory in the same file is another run."""
    from robustkit.data import load_dataset

    x, y = load_dataset("mnist", "test", n=6)
    body = "import torch\nfrom torch import nn\n\ndef build():\n    torch.manual_seed(1)\n"
    body += "    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n\nother = build\n"
    here, there = tmp_path / "here", tmp_path / "there"
    for folder in (here, there):
        folder.mkdir()
        (folder / "own.py").write_text(body)
        np.savez(folder / "d.npz", x=(x.numpy() * 255).round().astype(np.uint8), y=y.numpy())
    db = str(tmp_path / "r.db")
    common = ["evaluate", "--no-progress", "--n", "6", "--db", db, "--format", "json"]
    ids = []
    for folder, model, data in (
        (here, "own.py:build", "d.npz"),
        (here, "./own.py:build", "./d.npz"),
        (tmp_path, "there/own.py:build", "there/d.npz"),
        (tmp_path, f"{here}/own.py:build", f"{here}/../here/d.npz"),
        (here, "own.py:other", "d.npz"),
    ):
        monkeypatch.chdir(folder)
        out = run(*common, "--model", model, "--data", data)
        assert out.exit_code == 0, out.output
        ids.append(json.loads(out.output)["run_id"])
    assert len(set(ids[:4])) == 1 and ids[4] != ids[0]


def test_a_factory_loading_other_weights_is_another_run(tmp_path):
    """A factory that loads its own weights was known by its file alone: after retraining,
    the same command reported the old weights' results as the new model's."""
    src, ckpt = tmp_path / "own.py", tmp_path / "own.pt"
    src.write_text(
        "import torch\nfrom torch import nn\n\ndef build():\n"
        "    net = nn.Sequential(nn.Flatten(), nn.Linear(3072, 10))\n"
        f"    net.load_state_dict(torch.load({str(ckpt)!r}, weights_only=True))\n"
        "    return net\n"
    )
    db = str(tmp_path / "r.db")
    args = ["evaluate", "--no-progress", "--data", "cifar10", "--n", "50", "--db", db]
    args += ["--format", "json", "--model"]

    def weights(seed: int) -> None:
        torch.manual_seed(seed)
        torch.save(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 10)).state_dict(), ckpt
        )

    weights(1)
    first = json.loads(run(*args, f"{src}:build").output)
    again = json.loads(run(*args, f"{src}:build").output)
    weights(2)
    retrained = json.loads(run(*args, f"{src}:build").output)
    assert again["run_id"] == first["run_id"] and retrained["run_id"] != first["run_id"]
    assert retrained["clean_accuracy"] != first["clean_accuracy"]


def test_an_edited_ensemble_member_file_is_another_run(tmp_path):
    """An ensemble member given as file.py:factory was known by its name alone: after an edit
    (its weights scaled by 1000, so that it decides the average) the same command resumed the
    old run and reported its clean accuracy, where a new store gave another."""
    src = tmp_path / "member.py"
    body = "import torch\nfrom torch import nn\n\ndef build():\n    torch.manual_seed(0)\n"
    body += "    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n"
    body += "    net[1].weight.data.mul_({})\n    return net\n"
    args = ["evaluate", "--no-progress", "--model", "mnist/lenet5", "--n", "8", "--format"]
    args += ["json", "--defense", f"ensemble:members={src}:build", "--db"]
    db = str(tmp_path / "r.db")
    src.write_text(body.format(1))
    first = json.loads(run(*args, db).output)
    again = json.loads(run(*args, db).output)
    src.write_text(body.format(1000))
    edited = json.loads(run(*args, db).output)
    fresh = json.loads(run(*args, str(tmp_path / "new.db")).output)
    assert again["run_id"] == first["run_id"] and edited["run_id"] != first["run_id"]
    assert edited["clean_accuracy"] == fresh["clean_accuracy"] != first["clean_accuracy"]


def test_an_ensemble_member_loading_other_weights_is_another_run(tmp_path):
    """Likewise a member whose factory loads its own weights: other weights (the file itself
    unchanged) resumed the run of the weights before."""
    src, ckpt = tmp_path / "member.py", tmp_path / "member.pt"
    src.write_text(
        "import torch\nfrom torch import nn\n\ndef build():\n"
        "    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n"
        f"    net.load_state_dict(torch.load({str(ckpt)!r}, weights_only=True))\n"
        "    return net\n"
    )
    args = ["evaluate", "--no-progress", "--model", "mnist/lenet5", "--n", "8", "--format"]
    args += ["json", "--defense", f"ensemble:members={src}:build", "--db", str(tmp_path / "r.db")]

    def weights(scale: float) -> None:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
        net[1].weight.data.mul_(scale)
        torch.save(net.state_dict(), ckpt)

    weights(1)
    first = json.loads(run(*args).output)
    weights(1000)
    retrained = json.loads(run(*args).output)
    assert retrained["run_id"] != first["run_id"]
    assert retrained["clean_accuracy"] != first["clean_accuracy"]


def test_an_interrupted_fresh_run_is_resumed_without_fresh(monkeypatch):
    """'rerun the same command' after a --fresh run deleted the shards it had just stored."""
    at_shard(monkeypatch, 1, interrupt)
    args = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "20", "--batch-size", "10"]
    result = run(*args, "--attack", "fgsm", "--seed", "8", "--no-progress", "--fresh")
    assert result.exit_code == 130
    assert result.output.strip().endswith("rerun the same command without --fresh to resume")


def test_the_stored_command_is_shell_quoted(tmp_path, monkeypatch):
    """The command was joined with spaces: the README's ensemble spec came out with a bare |."""
    import sys

    db = tmp_path / "r.db"
    argv = ["evaluate", "--no-progress", "--model", "mnist/lenet5", "--n", "2", "--db", str(db)]
    argv += ["--defense", "ensemble:members=mnist/lenet5-at|mnist/cnn-tiny-at"]
    monkeypatch.setattr(sys, "argv", ["robustkit", *argv])
    assert run(*argv).exit_code == 0
    with Store.open(db) as store:
        (stored,) = [r["command"] for r in store.runs()]
    assert stored.endswith("--defense 'ensemble:members=mnist/lenet5-at|mnist/cnn-tiny-at'")


def test_a_model_is_evaluated_on_its_own_data_set_only(tmp_path):
    """A torchvision (ImageNet) model took --data cifar10 (scored against ImageNet classes
    0-9: 0%) and --data mnist (1-channel images broadcast by its normalization), and without
    --data it asked for an 'imagenet' data set robustkit does not have."""
    common = ["evaluate", "--no-progress", "--n", "2", "--db", str(tmp_path / "r.db")]
    for data in ("cifar10", "mnist"):
        result = run(*common, "--model", "torchvision/resnet18", "--data", data)
        assert_one_line_error(result, "trained on imagenet", f"--data {data} holds")
    assert_one_line_error(
        run(*common, "--model", "cifar10/resnet20", "--data", "mnist"), "trained on cifar10"
    )
    assert_one_line_error(
        run(*common, "--model", "torchvision/resnet18"), "(--data) is needed", "--data file.npz"
    )
    assert not (tmp_path / "r.db").exists()


def test_own_model_files_that_exit_or_name_no_factory(tmp_path):
    """A model file whose import ran argparse (or sys.exit) ended robustkit with its exit code
    and argparse's usage; `--model net.py` without a factory was an 'unknown model'."""
    parse = tmp_path / "argp.py"
    parse.write_text(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--foo', required=True)\n"
        "p.parse_args()\ndef build():\n    pass\n"
    )
    leave = tmp_path / "leave.py"
    leave.write_text("def build():\n    raise SystemExit(3)\n")
    common = ["evaluate", "--no-progress", "--n", "2", "--data", "cifar10", "--model"]
    result = run(*common, f"{parse}:build")  # argparse's own usage lines come first
    assert result.exit_code == 2 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert "exited (SystemExit: 2)" in last and "__name__ == '__main__'" in last
    assert_one_line_error(run(*common, f"{leave}:build"), "build() exited (SystemExit: 3)")
    assert_one_line_error(run(*common, str(leave)), "does not name a factory", "file.py:factory")


def test_model_patterns_match_in_any_case():
    upper = json.loads(run("models", "MNIST/*", "--format", "json").output)
    lower = json.loads(run("models", "mnist/*", "--format", "json").output)
    assert upper == lower and len(lower) == 5


def test_what_an_own_model_file_prints_leaves_json_output_intact(tmp_path):
    src = tmp_path / "chatty.py"
    src.write_text(
        "import torch\nprint('loading my model')\n\ndef build():\n    print('built')\n"
        "    torch.manual_seed(0)\n    return torch.nn.Sequential(torch.nn.Flatten(), "
        "torch.nn.Linear(3072, 10))\n"
    )
    result = CliRunner().invoke(
        cli,
        ["evaluate", "--no-progress", "--n", "2", "--data", "cifar10", "--model", f"{src}:build"]
        + ["--db", str(tmp_path / "r.db"), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == 2
    assert "loading my model" in result.stderr and "built" in result.stderr


def test_what_an_own_model_prints_in_forward_leaves_json_output_intact(tmp_path):
    """Found by review: a model printing in its forward() broke --format json (its prints
    came before the report on stdout); only loading the model sent them to stderr. They go to
    stderr in either format now, and the report alone to stdout."""
    src = tmp_path / "chatty_forward.py"
    src.write_text(
        "import torch\n\nclass Chatty(torch.nn.Sequential):\n    def forward(self, x):\n"
        "        print('forward of', len(x))\n        return super().forward(x)\n\n"
        "def build():\n    torch.manual_seed(0)\n"
        "    return Chatty(torch.nn.Flatten(), torch.nn.Linear(3072, 10))\n"
    )
    for fmt_ in ("json", "table"):
        result = CliRunner().invoke(
            cli,
            ["evaluate", "--no-progress", "--n", "2", "--data", "cifar10"]
            + ["--model", f"{src}:build", "--attack", "fgsm", "--format", fmt_]
            + ["--db", str(tmp_path / "r.db"), "--save-adv", str(tmp_path / "adv.npz")],
        )
        assert result.exit_code == 0, result.output
        assert "forward of" not in result.stdout and "forward of 2" in result.stderr
        if fmt_ == "json":
            assert "fgsm" in json.loads(result.stdout)["attacks"]
        else:
            assert result.stdout.startswith("model ")


def test_flags_no_attack_uses_and_out_of_range_numbers_are_one_line_errors(tmp_path):
    """Without --attack, --eps and --targeted were accepted and stored another run of the same
    clean accuracy; seeds past 2**63 and budgets past 2**63 crashed with tracebacks (or, at
    2**63, ran no query at all and exited 0); a misspelt model file asked for --data."""
    db = str(tmp_path / "r.db")
    common = ["evaluate", "--no-progress", "--model", "mnist/lenet5", "--n", "2", "--db", db]
    assert_one_line_error(run(*common, "--eps", "0.1"), "--eps is used by no attack", "--attack")
    assert_one_line_error(run(*common, "--targeted"), "--targeted is used by no attack")
    for seed in ("99999999999999999999", "9223372036854775808", "-9223372036854775809"):
        assert_one_line_error(run(*common, "--seed", seed), "seed must be a whole number from")
    for queries in ("99999999999999999999", "9223372036854775808"):
        assert_one_line_error(
            run(*common, "--attack", "cgba", "--queries", queries), "max_queries must be", "10**12"
        )
    with Store.open(db) as store:
        assert store.runs() == []  # nothing stored
    # a clean-accuracy run stored with --eps before it was refused still resumes
    from robustkit.runner import RunConfig, execute, prepare

    old = prepare(RunConfig(model="mnist/lenet5", n=2, eps="0.1"))
    with Store.open(db) as store:
        execute(replace(old, unused_flag=None), store, progress=False)
    again = json.loads(run(*common, "--eps", "0.1", "--format", "json").output)
    assert again["run_id"] == old.run_id
    assert_one_line_error(run(*common, "--eps", "0.1", "--fresh"), "--eps is used by no attack")
    missing = str(tmp_path / "nets" / "mynet.py")
    assert_one_line_error(
        run("evaluate", "--model", f"{missing}:build", "--n", "2"), "mynet.py does not exist"
    )


def test_a_dct_factor_too_large_for_the_images_is_refused_before_the_run_is_stored(tmp_path):
    """``cgba:dim_reduction_factor=64`` on 28×28 MNIST images: the factor can only be judged
    against the images, which the attack saw in its first shard, after the run was stored;
    the one-line error left an empty run marked running in the store (``runs list``)."""
    db = str(tmp_path / "r.db")
    common = ["evaluate", "--no-progress", "--model", "mnist/cnn-tiny-at", "--n", "2"]
    for spec in ("cgba:dim_reduction_factor=64", "geoda:dim_reduction_factor=29"):
        result = run(*common, "--db", db, "--attack", spec, "--queries", "5")
        assert_one_line_error(result, "dim_reduction_factor", "larger than the images' 28×28")
    with Store.open(db) as store:
        assert store.runs() == []  # nothing stored


# A Ctrl-C while the command line loads: simulated by an import hook that interrupts the import
# of robustkit.cli, as a SIGINT arriving then would.
_INTERRUPTED_START = """
import sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "robustkit.cli":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
from robustkit.__main__ import main
main()
"""


def test_ctrl_c_while_the_command_line_loads_is_one_line_not_a_traceback():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED_START], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == ["interrupted while starting; nothing was run"]


def test_the_console_script_and_python_m_run_the_command_line():
    import subprocess
    import sys
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="robustkit")
    assert script.value == "robustkit.__main__:main"
    done = subprocess.run(
        [sys.executable, "-m", "robustkit", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("robustkit, version"), done


def test_importing_the_package_loads_only_its_errors():
    """The console script imports robustkit before robustkit.__main__ can catch a Ctrl-C: that
    import must stay next to nothing, the rest loading inside the guard."""
    import subprocess
    import sys

    code = "import robustkit, sys; print(sorted(m for m in sys.modules if 'robustkit' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = {m for m in eval(done.stdout) if not m.startswith("__editable__")}
    assert loaded == {"robustkit", "robustkit.errors"}


_TERMINATED_AT_THE_SECOND_SHARD = """
import os, signal, sys
import robustkit.evaluation as evaluation
from robustkit.cli import main

real = evaluation.evaluate_shard

def stopped_at_the_second_shard(*args):
    if args[6] == 1 and not os.environ.get("NO_TERM"):
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill`, `timeout` or a job scheduler stop it
    return real(*args)

evaluation.evaluate_shard = stopped_at_the_second_shard
sys.argv = ["robustkit", *sys.argv[1:]]
main()
"""


def test_sigterm_keeps_the_finished_shards_and_says_how_to_resume(tmp_path):
    """A SIGTERM (kill, timeout, a job scheduler's stop) ended a run without a word: the
    finished shards were stored but the user was not told so, or how to go on. It now ends
    as Ctrl-C does, with one line saying what is stored, and exit status 143; the same
    command resumes."""
    import signal
    import subprocess
    import sys

    db = tmp_path / "r.db"
    args = ["evaluate", "--model", "mnist/lenet5", "--n", "8", "--batch-size", "4"]
    args += ["--attack", "fgsm", "--no-progress", "--db", str(db)]
    command = [sys.executable, "-c", _TERMINATED_AT_THE_SECOND_SHARD, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 128 + signal.SIGTERM, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert line.startswith("interrupted: 1 of 2 shards of run") and str(db) in line, line
    assert line.endswith("rerun the same command to resume"), line
    resumed = subprocess.run(
        command + ["--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_TERM": "1"},
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["n"] == 8


def test_a_fresh_run_keeps_the_earlier_results_until_it_stores_a_shard(tmp_path, monkeypatch):
    """--fresh deleted the stored run before computing anything: a fresh rerun that failed
    (here the model's outputs turn NaN) or was interrupted in its first shard left neither the
    old results nor new ones. The earlier run now stays, whole, until the first new shard
    replaces it in one transaction."""
    src = switchable_model_file(tmp_path / "net.py", "NAN", "out * float('nan')")
    db = tmp_path / "results.db"
    args = ["evaluate", "--model", f"{src}:net", "--data", "mnist", "--n", "8"]
    args += ["--batch-size", "4", "--attack", "fgsm", "--no-progress", "--db", str(db)]
    args += ["--format", "json"]
    first = json.loads(run(*args).output)

    def stored():
        with Store.open(db) as store:
            (row,) = store.runs()
            return row, store.finished_shards(row["run_id"]), len(store.results(row["run_id"]))

    before = stored()
    assert before[0]["status"] == "finished" and before[1] == {0, 1} and before[2] == 8
    real = at_shard(monkeypatch, 0, lambda: monkeypatch.setenv("NAN", "1"))
    failed = run(*args, "--fresh")
    assert_one_line_error(
        failed,
        "NaN or infinite",
        f"nothing new is stored; the earlier results of run {first['run_id']} in {db} are kept",
    )
    assert stored() == before
    monkeypatch.delenv("NAN")
    at_shard(monkeypatch, 0, interrupt)
    stopped = run(*args, "--fresh")
    assert stopped.exit_code == 130
    assert stopped.output.strip().endswith("are kept; rerun the same command to start over")
    assert stored() == before
    monkeypatch.setattr("robustkit.evaluation.evaluate_shard", real)
    again = json.loads(run(*args, "--fresh").output)
    after = stored()
    assert after[0]["started"] > before[0]["started"] and after[1:] == before[1:]
    assert again["robust_accuracy"] == first["robust_accuracy"]


class _CtrlCAfterReplacing:
    """A store connection that raises KeyboardInterrupt right after the commit of the
    transaction that replaced an earlier run: a Ctrl-C in the instant after that commit."""

    def __init__(self, conn):
        self._conn, self._replaced, self.fired = conn, False, False

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def execute(self, sql, *args):
        result = self._conn.execute(sql, *args)
        if sql.startswith("DELETE FROM runs WHERE run_id"):
            self._replaced = True
        elif sql == "COMMIT" and self._replaced and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        return result


def test_a_ctrl_c_just_after_a_fresh_run_replaced_the_earlier_one_says_so(tmp_path, monkeypatch):
    """A Ctrl-C between the commit of a --fresh run's first shard (which replaced the earlier
    results) and the moment the store noted it said "nothing new is stored; the earlier results
    ... are kept", and to rerun the command (with --fresh) to start over: they were gone."""
    db = tmp_path / "results.db"
    args = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "8", "--batch-size", "4"]
    args += ["--attack", "fgsm", "--no-progress", "--db", str(db)]
    assert run(*args).exit_code == 0
    real_init = Store.__init__
    connections = []

    def init(self, conn, path):
        connections.append(_CtrlCAfterReplacing(conn))
        real_init(self, connections[-1], path)

    monkeypatch.setattr(Store, "__init__", init)
    stopped = run(*args, "--fresh")
    assert stopped.exit_code == 130 and connections[-1].fired, stopped.output
    line = stopped.output.strip()
    assert "are kept" not in line, line
    assert line.startswith("interrupted: 1 of 2 shards of run") and str(db) in line, line
    assert line.endswith("rerun the same command without --fresh to resume"), line
    with Store.open(db) as store:
        (row,) = store.runs()
        assert store.finished_shards(row["run_id"]) == {0}


def test_save_adv_says_which_attack_comes_first_when_the_table_lists_them_by_name(tmp_path):
    """--save-adv takes, of a sample several attacks broke, the example of the first attack
    in the order given, and said "the first attack", while the report lists the attacks by
    name: with --attack pgd --attack fgsm the table's first row is fgsm, the file's examples
    pgd's. The help and the report's line now say which order, and which attacks."""
    out = tmp_path / "adv.npz"
    args = ["evaluate", "--model", "mnist/lenet5", "--n", "8", "--eps", "0.3"]
    args += ["--attack", "pgd:steps=3", "--attack", "fgsm", "--no-progress"]
    args += ["--db", str(tmp_path / "r.db"), "--save-adv", str(out)]
    result = run(*args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rows = [ln.split()[0] for ln in lines if ln.startswith(("fgsm", "pgd"))]
    assert rows == ["fgsm", "pgd:steps=3"], result.output  # the report's order: by name
    assert lines[-1] == (
        f"adversarial examples saved to {out} (of a sample several attacks broke, the example "
        "of the first in the order given: pgd:steps=3, fgsm)"
    ), lines[-1]
    saved = np.load(out)
    assert "pgd:steps=3" in set(saved["attack"].tolist())
    report = json.loads(run(*args, "--format", "json").output)
    assert report["saved_adversarials_order"] == ["pgd:steps=3", "fgsm"]
    assert "in the order given" in " ".join(run("evaluate", "--help").output.split())


def test_an_empty_data_or_weights_path_is_refused_not_replaced_by_the_models_own(
    tmp_path, monkeypatch
):
    """``--data "$DATA"`` with the variable unset (an empty path) evaluated the model on its own
    data set instead, without a word, and stored that run; ``--weights ""`` said "weights file
    . does not exist". Both are one-line errors saying the option is empty, before anything
    is loaded (from Python too: RunConfig(dataset=""))."""
    import robustkit.zoo as zoo
    from robustkit.errors import InputError
    from robustkit.runner import RunConfig, prepare

    def refuse(*args, **kwargs):
        raise AssertionError("loaded a model for an empty path")

    monkeypatch.setattr(zoo, "load_model", refuse)
    db = tmp_path / "r.db"
    base = ["evaluate", "--model", "mnist/cnn-tiny-at", "--n", "2", "--attack", "fgsm"]
    base += ["--db", str(db), "--no-progress", "--device", "cpu"]
    for option in ("--data", "--weights"):
        assert_one_line_error(run(*base, option, ""), option, "empty")
    for field in ("dataset", "weights"):
        config = RunConfig(model="mnist/cnn-tiny-at", n=2, **{field: ""})
        with pytest.raises(InputError, match="empty"):
            prepare(config)
    assert not db.exists()


def test_user_mistakes_exit_with_status_2_as_clicks_own_usage_errors(tmp_path):
    """`--n abc` (click's check) exited with 2 and `--n 0` (robustkit's) with 1, `--weights DIR`
    with 2 and `--data DIR` with 1: a script could not tell a mistake by its exit status. Every
    one-line error of a user's mistake exits with 2 now; 1 is left to robustkit's own bugs."""
    common = ["evaluate", "--no-progress", "--model", "mnist/lenet5", "--db", str(tmp_path / "r")]
    assert run(*common, "--n", "abc").exit_code == 2  # click's own
    for args in (["--n", "0"], ["--data", str(tmp_path)], ["--attack", "pgdd"], ["--eps", "8/0"]):
        result = run(*common, *args)
        assert_one_line_error(result)
        assert result.exit_code == 2, (args, result.output)
    missing = str(tmp_path / "none.db")
    for args in (["runs", "show", "abcd", "--db", missing], ["leaderboard", "--db", missing]):
        assert run(*args).exit_code == 2


def test_queries_and_targeted_that_no_attack_uses_are_refused(tmp_path):
    """`--attack pgd --queries 100` ran PGD and dropped the budget without a word (as
    `--queries 100` beside `cgba:max_queries=300`), and `--targeted --attack
    pgd:targeted=false` stored a run headed "targeted" whose one attack was untargeted: each
    a setting used by no attack, refused as --eps is, naming the fix."""
    db = str(tmp_path / "r.db")
    common = ["evaluate", "--no-progress", "--model", "mnist/lenet5", "--n", "2", "--db", db]
    assert_one_line_error(
        run(*common, "--attack", "pgd:steps=2", "--queries", "100"),
        "--queries 100 is used by no attack here",
        "drop --queries",
    )
    assert_one_line_error(
        run(*common, "--attack", "cgba:max_queries=30", "--queries", "100"),
        "--queries 100 is used by no attack here",
        "cgba:max_queries=30 sets its own",
    )
    assert_one_line_error(
        run(*common, "--attack", "pgd:steps=2,targeted=false", "--targeted"),
        "--targeted is used by no attack",
        "drop --targeted",
    )
    with Store.open(db) as store:
        assert store.runs() == []  # nothing stored
    both = run(*common, "--attack", "pgd:steps=2", "--attack", "cgba", "--queries", "10")
    assert both.exit_code == 0, both.output
    # the default budget, or --queries left out, stays fine for white-box runs
    assert run(*common, "--attack", "pgd:steps=2").exit_code == 0


def test_an_option_given_twice_with_two_values_is_refused(tmp_path):
    """`--eps 8/255 ... --eps 4/255` (a command line built up by a script, say) ran and stored
    a run at 4/255 without a word, and `--model a --model b` evaluated b alone: click keeps the
    last value. An option that takes one value, given two, is a one-line error now (the same
    value twice is no conflict), in every command; repeatable options stay repeatable."""
    db = str(tmp_path / "r.db")
    common = ["evaluate", "--no-progress", "--n", "2", "--db", db]
    assert_one_line_error(
        run(*common, "--model", "mnist/lenet5", "--model=mnist/lenet5-at"),
        "--model is given twice (mnist/lenet5, mnist/lenet5-at); give it once",
    )
    args = [*common, "--model", "mnist/lenet5", "--attack", "fgsm", "--attack", "pgd:steps=2"]
    assert_one_line_error(run(*args, "--eps", "0.3", "--eps", "0.1"), "--eps is given twice")
    assert_one_line_error(run(*args, "--n", "3"), "--n is given twice (2, 3)")
    assert_one_line_error(run("runs", "list", "--db", db, "--db", db + "x"), "--db is given")
    assert_one_line_error(run("leaderboard", "run", "--seed", "1", "--seed", "2"), "--seed is")
    assert not os.path.exists(db)
    # a value that looks like an option is the option's value, not another option
    same = run(*args, "--n", "2", "--seed", "-1", "--format", "json")
    assert same.exit_code == 0, same.output
    assert json.loads(same.output)["seed"] == -1


def test_save_adv_without_an_attack_is_refused(tmp_path):
    """`evaluate --model M --save-adv adv.npz` (no --attack) wrote the clean images as
    "adversarial examples saved to adv.npz" and exited 0: refused now, as --eps is there."""
    out, db = tmp_path / "adv.npz", tmp_path / "r.db"
    result = run(
        "evaluate", "--model", "mnist/lenet5", "--n", "2", "--save-adv", str(out),
        "--db", str(db), "--no-progress",
    )  # fmt: skip
    assert_one_line_error(result, "--save-adv", "no attack", "add an --attack or drop --save-adv")
    assert not out.exists() and not db.exists()


def test_an_empty_option_value_is_refused(tmp_path):
    """`--save-adv "$OUT"` with OUT unset ran and stored the run, saved nothing and said
    nothing (an empty path read as no option), as `leaderboard --out ""` wrote no files,
    `--data ""` took the model's data set and `--device ""` the default; `--weights ""`
    said "weights file . does not exist"."""
    db = str(tmp_path / "r.db")
    common = ["evaluate", "--no-progress", "--model", "mnist/lenet5", "--n", "2", "--db", db]
    for option in ("--save-adv", "--data", "--device", "--weights"):
        assert_one_line_error(
            run(*common, "--attack", "fgsm", option, ""),
            f"{option} is given an empty value; give one, or leave {option} out",
        )
    assert not os.path.exists(db)
    assert_one_line_error(run("leaderboard", "--db", db, "--out="), "--out is given an empty")


def test_evaluate_help_says_what_no_attack_and_the_eps_scale_mean():
    """--help said neither what a run without --attack measures nor on what scale --eps is."""
    text = " ".join(run("evaluate", "--help").output.split())
    assert "without --attack, clean accuracy only" in text, text
    assert "on the [0, 1] pixel scale" in text, text


def test_models_help_gives_the_unit_of_its_clean_accuracies():
    """`models --format json` gives clean accuracies in percent (91.73) where `evaluate`'s JSON
    gives fractions (0.9173); --help did not say which."""
    text = " ".join(run("models", "--help").output.split())
    assert "clean accuracy in percent" in text, text


@pytest.mark.parametrize("args", [["models"], ["--help"], ["--version"], ["runs", "list", "-h"]])
def test_stdout_that_cannot_be_written_is_one_line_not_a_traceback(args):
    """`robustkit models > /dev/full` (a full disk) ended in an OSError traceback, and a second
    message from Python's flush at exit; it is a one-line error and exit status 2, also for
    the help and version click prints itself."""
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "robustkit", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: cannot write the output"), lines
    assert "No space left on device" in lines[0]


@pytest.mark.parametrize("fmt_", ["table", "json"])
def test_a_report_that_cannot_be_printed_says_the_run_is_stored(tmp_path, monkeypatch, fmt_):
    db = tmp_path / "r.db"
    full_stdout(monkeypatch)
    result = run(
        "evaluate", "--model", "mnist/lenet5", "--n", "2", "--attack", "fgsm",
        "--no-progress", "--db", str(db), "--format", fmt_,
    )  # fmt: skip
    assert_one_line_error(result, "No space left on device", "is stored in", "runs show")
    with Store.open(str(db), create=False) as store:
        (stored,) = store.runs(status="finished")
    assert f"run {stored['run_id']} is stored" in result.output


def test_runs_list_to_a_full_disk_is_one_line(tmp_path, monkeypatch):
    db = tmp_path / "r.db"
    Store.open(str(db)).close()
    full_stdout(monkeypatch)
    assert_one_line_error(run("runs", "list", "--db", str(db)), "cannot write the output")


def test_counts_of_one_are_singular_in_reports(tmp_path):
    """The report said "(1 samples)" and `runs list` "1/1 samples"."""
    from robustkit.tables import counted

    assert [counted(n, "sample") for n in (0, 1, 2)] == ["0 samples", "1 sample", "2 samples"]
    db = tmp_path / "r.db"
    result = run(
        "evaluate", "--model", "mnist/lenet5", "--n", "1", "--no-progress", "--db", str(db)
    )
    assert result.exit_code == 0, result.output
    assert "(1 sample)" in result.output and "samples" not in result.output, result.output
    deleted = run("runs", "delete", "--yes", "--db", str(db), result.output.split("run ")[-1][:8])
    assert "1/1 sample " in deleted.output and "samples" not in deleted.output, deleted.output


def test_loading_mistakes_name_the_cli_options(tmp_path):
    """The loader's and the data's advice named load_model's and load_dataset's arguments on
    the command line too: a checkpoint that needs full unpickling said "pass allow_unsafe=True
    (CLI: --unsafe-load)", a data file of 2 images without --n "n=1000 from offset=0 asks for
    1000. Use n <= 2", and --offset 20000 "offset=20000 is past the end". Each names the
    command's options now; weights for a plug-in that takes none keep "drop --weights"."""

    from robustkit.registry import MODELS

    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((2, 1, 28, 28), np.uint8), y=np.zeros(2, np.int64))
    net, unsafe = unpickling_checkpoint(tmp_path)
    weights = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), weights)
    common = ["evaluate", "--no-progress", "--device", "cpu", "--db", str(tmp_path / "r.db")]
    expected = [
        (
            ["--model", f"{net}:build", "--data", str(data), "--weights", str(unsafe)],
            f"{unsafe} cannot be loaded with weights_only=True (it refers to GLOBAL "
            "argparse.Namespace): it needs full unpickling, which can run code from the file; "
            "refused. If you trust it, pass --unsafe-load",
        ),
        (
            ["--model", "test/plugin-no-weights", "--weights", str(weights)],
            "model test/plugin-no-weights takes no weights file (its factory has no parameter "
            "for one); drop --weights",
        ),
        (
            ["--model", "mnist/cnn-tiny-at", "--data", str(data)],
            f"{data} has 2 samples; --n 1000 from --offset 0 asks for 1000; use --n 2 or fewer",
        ),
        (
            ["--model", "mnist/cnn-tiny-at", "--offset", "20000", "--n", "5"],
            "--offset 20000 is past the end of mnist/test (10000 samples); use an offset below "
            "10000",
        ),
    ]
    MODELS.add("test/plugin-no-weights", lambda: torch.nn.Linear(4, 2), dataset="mnist")
    try:
        for options, message in expected:
            result = run(*common, *options)
            assert_one_line_error(result)
            assert result.output.strip() == f"Error: {message}", result.output
    finally:
        MODELS._entries.pop("test/plugin-no-weights")
    assert not (tmp_path / "r.db").exists()


def test_run_setting_mistakes_name_the_cli_options(tmp_path):
    """The RunConfig errors that name the field from Python (``eps=``) keep naming the option
    on the command line, word for word as before."""
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((2, 1, 28, 28), np.uint8), y=np.zeros(2, np.int64))
    common = ["evaluate", "--no-progress", "--model", "mnist/cnn-tiny-at", "--n", "2"]
    common += ["--db", str(tmp_path / "r.db")]
    expected = [
        (
            ["--eps", "0.1"],
            "--eps is used by no attack: without --attack a run measures clean accuracy only; "
            "add an --attack or drop --eps",
        ),
        (
            ["--targeted", "--attack", "fgsm:targeted=false"],
            "--targeted is used by no attack: every attack here is set untargeted "
            "(fgsm:targeted=false); drop --targeted, or targeted=false from a spec",
        ),
        (
            ["--eps", "0.1", "--attack", "cgba"],
            "--eps 0.1 is used by no attack here: the label-only attacks (cgba) are L2 and "
            "minimum-norm in a linf run; give --norm l2 to judge them at an L2 ε, or drop --eps",
        ),
        (
            ["--split", "train", "--data", str(data)],
            f"--split train does not apply to a data file ({data} is one set of images); "
            "drop --split",
        ),
        (
            ["--data", "cifar10"],
            "mnist/cnn-tiny-at was trained on mnist but --data cifar10 holds cifar10 images and "
            "labels, which are not its classes; evaluate it on mnist data (--data mnist)",
        ),
        (
            ["--eps", "0.1", "--attack", "fgsm:eps=0.2"],
            "attack 'fgsm:eps=0.2' is set to linf ε=0.2 but the run's threat model is linf "
            "ε=0.1; a run has one: drop norm=/eps= from the spec, or evaluate that attack in a "
            "run of its own (--norm, --eps)",
        ),
        (
            ["--attack", "pgd:norm=l2"],
            "attack 'pgd' runs in l2 but the run's ε (0.3) is one of linf; evaluate it in a "
            "run of that norm (--norm l2 --eps ...)",
        ),
        (
            ["--targeted", "--attack", "apgd-ce"],
            "attack 'apgd-ce' has no targeted mode; drop --targeted or that attack (pgd, fgsm "
            "and the label-only attacks take targets)",
        ),
        (
            ["--batch-size", "0"],
            "batch_size (--batch-size) must be a positive number of samples per shard "
            "(a whole number), got 0",
        ),
        (
            ["--offset", "-1"],
            "offset (--offset) must be the index of the first sample, 0 or more "
            "(a whole number), got -1",
        ),
    ]
    if not torch.cuda.is_available():
        expected.append(
            (
                ["--device", "cuda"],
                "device 'cuda' is not available: no CUDA GPU is visible; use device cpu or auto "
                "(--device cpu)",
            )
        )
    for options, message in expected:
        result = run(*common, *options)
        assert_one_line_error(result)
        assert result.output.strip() == f"Error: {message}", result.output
    # MNIST images for a CIFAR-10 model (a data file of another shape)
    result = run(*common[:2], "--model", "cifar10/resnet20", *common[4:], "--data", str(data))
    assert result.output.strip() == (
        "Error: cifar10/resnet20 takes 3×32×32 images but these are 1×28×28; pass images of "
        "cifar10 (--data cifar10)"
    ), result.output
