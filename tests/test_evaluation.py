"""evaluate(): shards, per-shard seeds, skipping, joint robust accuracy, specs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustkit.errors import InputError, RobustkitError, UnknownNameError
from robustkit.evaluation import evaluate, label_attacks
from robustkit.registry import ATTACKS
from robustkit.specs import build_attack, build_defense, parse_attack_spec, parse_value

from .helpers import Linear, RandomSign


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(40, 3, 8, 8, generator=gen)
    model = Linear()
    y = model(x).argmax(1)
    y[::7] = (y[::7] + 3) % 10
    return model, x, y


def test_shard_results_do_not_depend_on_which_shards_run(data):
    model, x, y = data
    attacks = [RandomSign(eps=0.2), RandomSign(norm="l2", eps=2.0)]
    full = evaluate(model, attacks, x, y, batch_size=8, seed=5)
    assert list(full.results) == ["random-sign", "random-sign#2"]
    seen = []
    part = evaluate(
        model, attacks, x, y, batch_size=8, seed=5, skip_shards={0, 2}, on_shard=seen.append
    )
    assert [s.index for s in seen] == [1, 3, 4]
    for shard in seen:
        for label, res in shard.results.items():
            assert torch.equal(res.x_adv, full.results[label].x_adv[shard.start : shard.stop])
    assert part.n == 24
    other_seed = evaluate(model, attacks, x, y, batch_size=8, seed=6)
    assert not torch.equal(
        other_seed.results["random-sign"].x_adv, full.results["random-sign"].x_adv
    )


def test_joint_robust_accuracy_is_worst_case(data):
    model, x, y = data
    ev = evaluate(model, [RandomSign(eps=0.3), RandomSign(eps=0.3, seed=1)], x, y, batch_size=16)
    a, b = ev.results.values()
    expected = (ev.clean_correct & a.robust & b.robust).float().mean()
    assert ev.robust_accuracy == pytest.approx(float(expected))
    assert ev.robust_accuracy <= min(a.robust_accuracy, b.robust_accuracy)
    assert ev.clean_accuracy == pytest.approx(float((model(x).argmax(1) == y).float().mean()))
    summary = ev.summary()
    assert summary["n"] == 40 and set(summary["attacks"]) == {"random-sign", "random-sign#2"}
    frame = ev.to_frame()
    assert len(frame) == 80 and set(frame["attack"]) == {"random-sign", "random-sign#2"}
    x_adv, which = ev.worst_case_adversarials(x)
    fooled = which >= 0
    assert torch.equal(fooled, (a.success & a.attacked) | (b.success & b.attacked))


def test_no_attacks_gives_clean_accuracy(data):
    """Without attacks there is a clean accuracy and no robust one: ``robust_accuracy`` was
    the clean accuracy (1.0 for a model right on every image) while the repr beside it said
    ``robust_accuracy=None`` and the summary None; it is NaN, as for minimum-norm attacks
    alone."""
    model, x, y = data
    for attacks in (None, []):
        ev = evaluate(model, attacks, x, y, batch_size=64)
        assert ev.results == {} and ev.summary()["robust_accuracy"] is None
        assert math.isnan(ev.robust_accuracy) and ev.clean_accuracy == pytest.approx(34 / 40)
        assert "robust_accuracy=None" in repr(ev)


def test_minimum_norm_attacks_alone_give_no_joint_robust_accuracy(data):
    """A label-only attack without an ε finds a distance for every sample it fools and says
    nothing about robustness at a budget: the joint figure is then absent (not the clean
    accuracy); given an ε it counts."""
    from robustkit import get_attack

    model, x, y = data
    alone = evaluate(model, [get_attack("cgba", max_queries=20)], x, y, batch_size=40)
    assert alone.summary()["robust_accuracy"] is None and math.isnan(alone.robust_accuracy)
    found = alone.results["cgba"]
    eps = float(found.norms[found.success & found.attacked].median())  # about half within it
    at_eps = get_attack("cgba", max_queries=20, eps=eps)
    mixed = evaluate(model, [get_attack("cgba", max_queries=20), at_eps], x, y, batch_size=40)
    judged = mixed.results["cgba#2"]
    assert judged.eps == pytest.approx(eps)
    expected = (mixed.clean_correct & judged.robust).float().mean()
    assert mixed.summary()["robust_accuracy"] == pytest.approx(float(expected))
    assert mixed.robust_accuracy < mixed.clean_accuracy  # some fooled within ε
    # its success rate is within ε, as robust judges it (once: at any distance, so a row read
    # "robust 100%, success 100%"); its median norm is over every distance found (once the
    # lower middle value, where the store's report takes the mean of the two)
    k = int(judged.attacked.sum())
    assert judged.success_rate == pytest.approx(float((judged.attacked & ~judged.robust).sum()) / k)
    assert judged.success_rate < found.success_rate  # found: at any distance
    dists = judged.norms[judged.success & judged.attacked].double().numpy()
    assert judged.median_norm() == pytest.approx(float(np.median(dists)))
    # the saved worst-case examples are exactly the samples the joint figure counts as broken
    # (once: every sample any attack fooled at any distance, the ε-less one included)
    _, which = mixed.worst_case_adversarials(x)
    assert torch.equal(which >= 0, mixed.clean_correct & ~mixed.joint_robust)
    assert set(which[which >= 0].tolist()) == {1}
    # min_norm=True: the others a minimum-norm attack fooled get its (closest) example
    x_adv, which = mixed.worst_case_adversarials(x, min_norm=True)
    plain = mixed.results["cgba"]
    assert torch.equal(which == 1, mixed.clean_correct & ~mixed.joint_robust)
    assert torch.equal(which == 0, plain.success & plain.attacked & mixed.joint_robust)
    assert torch.equal(x_adv[which == 0], plain.x_adv[which == 0])
    assert torch.equal(x_adv[which < 0], x[which < 0]) and mixed.targets_of(which) is None


def test_labels_may_be_a_list(data):
    model, x, y = data
    a = evaluate(model, [RandomSign(eps=0.3)], x, y, batch_size=16)
    b = evaluate(model, [RandomSign(eps=0.3)], x, y.tolist(), batch_size=16)
    assert b.robust_accuracy == a.robust_accuracy and torch.equal(b.y, a.y)


def test_evaluate_rejects_bad_sizes(data):
    model, x, y = data
    with pytest.raises(InputError, match=r"one label per image \(40\), got shape \(39,\)"):
        evaluate(model, [], x, y[:-1])
    with pytest.raises(InputError, match="batch size"):
        evaluate(model, [], x, y, batch_size=0)
    assert list(label_attacks({"mine": RandomSign()})) == ["mine"]


def test_spec_parsing():
    assert parse_value("8/255") == pytest.approx(8 / 255)
    assert parse_value("true") is True and parse_value("10") == 10 and parse_value("dlr") == "dlr"
    assert parse_attack_spec("pgd:steps=20,restarts=2,step-size=0.01") == (
        "pgd",
        {"steps": 20, "restarts": 2, "step_size": 0.01},
    )
    with pytest.raises(InputError, match="key=value"):
        parse_attack_spec("pgd:steps")


def test_build_attack_fills_run_settings(monkeypatch):
    monkeypatch.setitem(
        ATTACKS._entries,
        "random-sign",
        type("E", (), {"name": "random-sign", "obj": RandomSign, "metadata": {}})(),
    )
    atk = build_attack("random-sign:overshoot=3", norm="l2", eps="0.5", seed=4)
    assert atk.params == {"norm": "l2", "eps": 0.5, "targeted": False, "seed": 4, "overshoot": 3}
    with pytest.raises(InputError, match="has no parameter 'stepz'"):
        build_attack("random-sign:stepz=3")
    with pytest.raises(UnknownNameError, match="unknown attack"):
        build_attack("no-such-attack")


def test_build_defense():
    d = build_defense("bit-depth:bits=3,bpda=true")
    assert d.params == {"bits": 3, "bpda": True}
    with pytest.raises(InputError, match="no parameter 'levels'"):
        build_defense("bit-depth:levels=3")
    with pytest.raises(RobustkitError):
        build_defense("input-noise:sigma=-1")


@pytest.mark.parametrize("name", ["cgba", "auto"])
@pytest.mark.parametrize("wrong_shard", [0, 1])
def test_a_shard_with_nothing_to_attack_joins_the_others(data, name, wrong_shard):
    """A shard whose images the model all gets wrong has nothing attacked. Its result lacked
    trajectories (decision attacks) and extras (auto's fooled_by): joined after an attacked
    shard it crashed the evaluation (and the run, after storing its shards); joined before one
    it dropped every shard's trajectories. Now it carries empty ones, and the fill values."""
    from robustkit import get_attack
    from robustkit.budgets import median_l2_at

    model, x, y = data
    x, y = x[:4], model(x[:4]).argmax(1)
    lo = 2 * wrong_shard
    y[lo : lo + 2] = (y[lo : lo + 2] + 1) % 10
    atk = get_attack("cgba", max_queries=30) if name == "cgba" else get_attack("auto", eps=0.1)
    res = evaluate(model, [atk], x, y, batch_size=2).results[name]
    whole = atk(model, x, y)
    assert torch.equal(res.attacked, whole.attacked) and res.attacked.sum() == 2
    if name == "cgba":
        assert [len(t) for t in res.trajectories][lo : lo + 2] == [0, 0]
        assert all(len(t) > 0 for i, t in enumerate(res.trajectories) if res.attacked[i])
        assert res.extras["dim_reduction_factor"][lo : lo + 2].tolist() == [0, 0]
        assert res.extras["step_queries"].tolist() == res.queries.tolist()
        assert not math.isnan(median_l2_at(res, [30])[0])
    else:
        assert res.extras["fooled_by"][lo : lo + 2].tolist() == [-1, -1]
    # one call where nothing is attacked has the same shape of result
    none = atk(model, x[lo : lo + 2], y[lo : lo + 2])
    assert not none.attacked.any()
    if name == "cgba":
        assert [len(t) for t in none.trajectories] == [0, 0]
        assert math.isnan(median_l2_at(none, [30])[0])
    else:
        assert none.extras["fooled_by"].tolist() == [-1, -1]


def test_accuracies_are_exact_fractions(data):
    """Accuracies were float32 means (0.05000000074505806), so a notebook's figure did not
    equal the stored report's (0.05)."""
    model, x, y = data
    ev = evaluate(model, [RandomSign(eps=0.3)], x, y, batch_size=40)
    correct = int(ev.clean_correct.sum())
    assert ev.clean_accuracy == correct / 40
    assert ev.results["random-sign"].clean_accuracy == correct / 40
    assert ev.robust_accuracy == int(ev.joint_robust.sum()) / 40
    assert (
        ev.results["random-sign"].robust_accuracy
        == int(ev.results["random-sign"].robust.sum()) / 40
    )


def test_a_minimum_norm_attack_without_eps_has_no_robust_accuracy(data):
    """Its result said 0.0 (every sample it fooled counted as broken, at any distance) where
    the evaluation around it said NaN; both are now NaN, and the summary has no number."""
    from robustkit import get_attack

    model, x, y = data
    ev = evaluate(model, [get_attack("cgba", max_queries=20)], x[:8], y[:8], batch_size=8)
    res = ev.results["cgba"]
    assert math.isnan(res.robust_accuracy) and math.isnan(res.summary()["robust_accuracy"])
    assert math.isnan(ev.robust_accuracy)
    assert not math.isnan(
        get_attack("cgba", max_queries=20, eps=1.0)(model, x[:8], y[:8]).robust_accuracy
    )


def test_skipped_shards_keep_the_samples_positions(data):
    """With shards skipped the evaluation's rows were numbered 0.. although they were later
    images of x, and worst_case_adversarials(x) raised an IndexError."""
    model, x, y = data
    part = evaluate(model, [RandomSign(eps=0.3)], x, y, batch_size=8, skip_shards={0, 2})
    positions = list(range(8, 16)) + list(range(24, 40))
    assert part.to_frame()["sample"].tolist() == positions
    assert part.to_frame()["y"].tolist() == y[positions].tolist()
    full = evaluate(model, [RandomSign(eps=0.3)], x, y, batch_size=8)
    adv_all, which_all = full.worst_case_adversarials(x)
    adv, which = part.worst_case_adversarials(x)  # all of x: the evaluated rows are picked
    assert torch.equal(adv, adv_all[positions]) and torch.equal(which, which_all[positions])
    assert torch.equal(part.worst_case_adversarials(x[positions])[0], adv)
    with pytest.raises(InputError, match="x has 5 images but this evaluation covers 24"):
        part.worst_case_adversarials(x[:5])


def test_evaluate_gives_one_line_errors_for_wrong_arguments(data):
    model, x, y = data
    with pytest.raises(InputError, match="attack 'a' is a str, not a robustkit attack"):
        evaluate(model, {"a": "pgd"}, x, y)
    # an attack's name for the attack said only "expected robustkit attacks, got str"
    with pytest.raises(
        InputError, match=r"got str 'pgd'; make it with robustkit.get_attack\('pgd'\)"
    ):
        evaluate(model, "pgd", x, y)
    with pytest.raises(InputError, match=r"got str 'pgd:steps=5'.*get_attack\('pgd', \.\.\.\)"):
        evaluate(model, [RandomSign(), "pgd:steps=5"], x, y)
    with pytest.raises(InputError, match="x must be a torch.Tensor of images, got ndarray"):
        evaluate(model, [RandomSign()], x.numpy(), y)
    with pytest.raises(InputError, match="batch size must be a positive whole number, got 2.5"):
        evaluate(model, [RandomSign()], x, y, batch_size=2.5)
    with pytest.raises(InputError, match="must be a torch.nn.Module, got function"):
        RandomSign()(lambda z: model(z), x, y)
    with pytest.raises(InputError, match="must be a torch.nn.Module, got function"):
        evaluate(lambda z: model(z), [RandomSign()], x, y)


def test_images_of_another_shape_name_no_cli_option(zoo_model):
    """evaluate() and an attack on MNIST-shaped images for a CIFAR-10 zoo model said "pass
    images of cifar10 (--data cifar10)": the CLI's option, where the call has no data argument
    at all."""
    model = zoo_model("cifar10/resnet20")
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([1, 2])
    expected = "cifar10/resnet20 takes 3×32×32 images but these are 1×28×28; pass images of cifar10"
    for call in (
        lambda: evaluate(model, [build_attack("fgsm:eps=0.1")], x, y),
        lambda: build_attack("fgsm:eps=0.1")(model, x, y),
    ):
        with pytest.raises(InputError) as info:
            call()
        assert str(info.value) == expected


def test_a_target_outside_the_classes_is_refused_before_the_first_shard(data):
    """A bad target in a later shard was refused only when that shard ran: the earlier shards'
    work was done, then lost with the error."""
    model, x, y = data
    target = (y + 1) % 10
    target[-1] = 10
    done = []
    attack = build_attack("pgd:steps=1,targeted=true")
    with pytest.raises(InputError, match="target labels must lie in 0..9 .*got 10"):
        evaluate(model, attack, x, y, target=target, batch_size=8, on_shard=done.append)
    assert done == []


def test_a_parameter_twice_or_a_fractional_seed_is_refused():
    """pgd:steps=3,steps=4 ran 4 steps under the label of 3; seed=1.9 was stored as 1."""
    from robustkit import get_attack

    with pytest.raises(InputError, match="'steps' is given twice"):
        parse_attack_spec("pgd:steps=3,steps=4")
    with pytest.raises(
        InputError, match=r"seed must be a whole number from -2\*\*63 to 2\*\*63-1, got 1.9"
    ):
        get_attack("pgd", seed=1.9)
    with pytest.raises(InputError, match="seed must be a whole number"):
        build_attack("pgd:seed=1.5")
    assert get_attack("pgd", seed=np.int64(3)).seed == 3


def test_a_targeted_attack_without_targets_is_refused_before_the_first_shard(data):
    """evaluate() with a targeted attack and no target= ran the untargeted attacks of the first
    shard, then failed with the attack's own advice to 'call attack(model, x, y, target)',
    which is not how evaluate() takes targets."""
    model, x, y = data
    done = []
    attacks = [RandomSign(eps=0.3), build_attack("pgd:steps=1,targeted=true")]
    with pytest.raises(InputError, match=r"attack 'pgd' is targeted: pass target=") as err:
        evaluate(model, attacks, x, y, batch_size=8, on_shard=done.append)
    assert "call attack(" not in str(err.value) and done == []


@pytest.mark.parametrize("bad", [1, "0", [0.0], [True], None])
def test_skip_shards_that_are_no_shard_indices_are_a_one_line_error(data, bad):
    """skip_shards=1 was a TypeError traceback ('int' object is not iterable); [0.0] skipped
    nothing, silently."""
    model, x, y = data
    with pytest.raises(InputError, match=r"skip_shards must be shard indices, e\.g\. \[0, 2\]"):
        evaluate(model, [RandomSign()], x, y, batch_size=8, skip_shards=bad)


def test_the_long_frame_keeps_integer_columns_some_attacks_lack_integer(data):
    """The targeted attack's ``target`` (and ``auto``'s ``fooled_by``, ``step_queries`` of a
    label-only attack) became float columns in the long frame (target class 8.0) because the
    other attacks' rows lack them; they stay integers, missing (<NA>) on those rows."""
    from robustkit import get_attack

    model, x, y = data
    target = (y + 1) % 10
    attacks = [get_attack("fgsm", eps=0.1), get_attack("fgsm", eps=0.1, targeted=True)]
    frame = evaluate(model, attacks, x, y, target=target).to_frame()
    assert frame["target"].dtype == "Int64" and frame["queries"].dtype == np.int64
    rows = frame[frame["attack"] == "fgsm#2"]
    assert rows["target"].tolist() == target.tolist()
    assert frame[frame["attack"] == "fgsm"]["target"].isna().all()


def test_the_progress_bar_in_a_notebook_without_ipywidgets_warns_nothing(data, monkeypatch):
    """``run_evaluation`` (progress on by default, as the README's notebook section calls it)
    printed tqdm's "TqdmWarning: IProgress not found. Please update jupyter and ipywidgets"
    in every Jupyter notebook without ipywidgets, which robustkit does not depend on: the bar
    falls back to tqdm's text bar without it, and the message sent users to repair a Jupyter
    that works. (tqdm.auto takes ``ipykernel.zmqshell`` in sys.modules for a kernel.)"""
    import sys
    import types
    import warnings

    pytest.importorskip("IPython")  # (tqdm.auto asks it for the shell)
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("zmqshell"))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # (import ipywidgets: ImportError)
    for name in ("tqdm.auto", "tqdm.autonotebook", "tqdm.notebook"):  # imported afresh
        monkeypatch.delitem(sys.modules, name, raising=False)
    model, x, y = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = evaluate(model, RandomSign(eps=0.2), x[:4], y[:4], progress=True)
    assert ev.n == 4
    assert not [w for w in caught if "ipywidgets" in str(w.message)], caught[0].message
