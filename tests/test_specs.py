"""Attack and defense specifications: bad values are one-line errors naming the kind."""

from __future__ import annotations

import re

import pytest

import robustkit
from robustkit.errors import InputError, RobustkitError
from robustkit.specs import build_attack, build_defense, parse_attack_spec


def test_a_value_the_constructor_rejects_is_one_line():
    with pytest.raises(
        RobustkitError, match=r"seed must be a whole number from -2\*\*63 to 2\*\*63-1, got 'abc'"
    ) as info:
        build_attack("pgd:seed=abc")
    assert "\n" not in str(info.value)
    # a constructor's own TypeError/ValueError (a plug-in's, say) still comes out as one line
    from robustkit.registry import Registry
    from robustkit.specs import instantiate

    plugins = Registry("attack")

    @plugins.register("fussy")
    class Fussy:
        def __init__(self, level: int = 1):
            int("not a number")

    with pytest.raises(RobustkitError, match="bad parameters for attack 'fussy': invalid") as info:
        instantiate(plugins, "fussy", {"level": 2})
    assert "\n" not in str(info.value)
    # rho=abc and stages=3 reached that fallback ("'<' not supported ..."); now they are named
    for spec, needle in [("apgd-ce:rho=abc", "rho must be a number"), ("auto:stages=3", "+")]:
        with pytest.raises(InputError, match=re.escape(needle)):
            build_attack(spec)


def test_an_auto_stage_cannot_set_its_own_threat_model():
    """auto(eps=0.1) with the stage pgd:eps=0.3 ran PGD at 0.3 and projected its examples
    onto the 0.1 ball: another attack than written, silently."""
    with pytest.raises(InputError, match=r"auto stage 'pgd:eps=0.3' sets its own threat"):
        robustkit.get_attack("auto", eps=0.1, stages="pgd:eps=0.3")
    with pytest.raises(InputError, match="sets its own threat model"):
        robustkit.get_attack("auto", norm="l2", eps=0.5, stages="apgd-ce:eps=1.0")
    assert robustkit.get_attack("auto", eps=0.1, stages="pgd:eps=0.1").eps == 0.1


def test_an_auto_stage_cannot_set_its_own_seed_and_stages_are_joined_by_plus():
    """Found by review: a stage's seed= was ignored without a word (seed=1 and seed=99 gave
    the same examples: each stage's seed comes from auto's); and stages joined by a comma
    said only "write key=value"."""
    for stages in ("pgd:seed=99", "apgd-ce:steps=5+pgd:steps=2;SEED=1"):
        with pytest.raises(InputError, match="sets its own seed.*drop seed= from the stage"):
            robustkit.get_attack("auto", stages=stages)
    with pytest.raises(InputError, match=r"join auto's stages with \+"):
        build_attack("auto:stages=apgd-ce:steps=2,apgd-t")
    # (pgd:steps=5,fgsm gets it too;) a stage's second parameter after a comma said only
    # "attack 'auto' has no parameter 'restarts'; its parameters are: norm, eps, stages, seed"
    for spec in ("auto:stages=pgd:steps=5,fgsm", "auto:stages=pgd:steps=5,restarts=2+fgsm"):
        with pytest.raises(InputError, match=r"join auto's stages with \+.* with ;") as info:
            build_attack(spec)
        assert "\n" not in str(info.value)
    # an attack without stages is not told how to join auto's
    with pytest.raises(InputError, match="has no parameter 'stages'") as info:
        build_attack("pgd:stages=3")
    assert "auto" not in str(info.value)


def test_a_constructors_own_error_is_kept():
    with pytest.raises(InputError, match="bits must be a whole number from 1 to 16"):
        build_defense("bit-depth:bits=40")


def test_malformed_parameter_names_the_kind():
    with pytest.raises(InputError, match="bad attack parameter 'steps'.*pgd:steps=20"):
        parse_attack_spec("pgd:steps")
    with pytest.raises(InputError, match="bad defense parameter 'bits'") as info:
        build_defense("bit-depth:bits")
    assert "attack" not in str(info.value) and "pgd" not in str(info.value)


def test_names_are_case_insensitive():
    assert type(build_attack("PGD:steps=3")).__name__ == "PGD"
    assert build_defense("Bit-Depth:bits=3").bits == 3


def test_an_auto_stage_eps_as_written_is_auto_s():
    """0.03137255 is 8/255 as written: the stage check refused it, printing both as 0.0313725."""
    atk = robustkit.get_attack("auto", eps="8/255", stages="apgd-ce:eps=0.03137255")
    assert atk.eps == pytest.approx(8 / 255)


def test_a_norm_in_an_attack_spec_is_spelled_as_norm_takes_it():
    """pgd:norm=L2 in an l2 run was refused as 'runs in L2 but the ε given is one of l2' (so
    were norm=Linf and norm=inf, which --norm takes), and pgd:norm=l3 was told to pass
    --norm l3, itself refused."""
    for spec, norm, eps in [
        ("pgd:norm=L2,steps=2", "l2", 0.5),
        ("pgd:norm=Linf,steps=2", "linf", 0.3),
        ("pgd:norm=inf,steps=2", "linf", 0.3),
    ]:
        atk = build_attack(spec, norm=norm, eps=eps)
        assert (atk.norm, atk.eps) == (norm, eps)
    with pytest.raises(InputError, match=r"unknown norm 'l3' in attack 'pgd:norm=l3'") as info:
        build_attack("pgd:norm=l3", norm="l2", eps=0.5)
    assert "norm=linf or norm=l2" in str(info.value) and "--norm l3" not in str(info.value)


def test_switches_built_directly_take_true_or_false_only():
    """Found by review: a switch given as text to the class itself (not through a spec or
    get_attack, which refuse it) went through bool(): baseline="false" was silently on."""
    import numpy as np

    from robustkit.attacks.apgd import APGDCE
    from robustkit.attacks.cgba import CGBA
    from robustkit.attacks.pgd import PGD
    from robustkit.defenses.bit_depth import BitDepth

    for build in (
        lambda: CGBA(baseline="false"),
        lambda: CGBA(shared_probes=0),
        lambda: PGD(random_start="no"),
        lambda: PGD(early_stop=None),
        lambda: APGDCE(early_stop="true"),
        lambda: BitDepth(bpda="false"),
    ):
        with pytest.raises(InputError, match="must be true or false, got"):
            build()
    assert (
        CGBA(baseline=np.bool_(False)).baseline is False
        and PGD(early_stop=False).early_stop is False
    )


def test_a_loss_alias_is_the_same_attack():
    """Found by review: pgd:loss=cw kept "cw" as its loss, so it was another configuration
    than pgd:loss=margin, the same attack (the run id still follows the spec text)."""
    cw, margin = build_attack("pgd:loss=cw"), build_attack("pgd:loss=MARGIN")
    assert cw.loss == margin.loss == "margin" and cw.params == margin.params


def test_two_runs_that_differ_in_a_float_parameter_are_told_apart_where_they_are_shown():
    """Spec texts kept 6 significant digits: input-noise:sigma=0.1 and sigma=0.1000001 were two
    runs (their parameters are in the run id) shown as one defense text, so the leaderboard
    made them one row, and runs at ε 0.1 and 0.1000001 were both "0.1". The texts shown keep
    every digit that tells two values apart; what is exact in 6 digits (or k/255) reads as
    before, and the ids of runs stored before stay as they were."""
    from robustkit.runner import RunConfig, prepare
    from robustkit.store import defense_names
    from robustkit.threat import format_eps

    shown, ids = [], []
    for spec in ("input-noise:sigma=0.1", "input-noise:sigma=0.1000001", "input-noise:sigma=8/255"):
        run = prepare(RunConfig(model="mnist/cnn-tiny-at", n=2, defenses=(spec,), sanity=False))
        shown += defense_names(run.fields["defenses"])
        ids.append(run.run_id)
    assert shown == [
        "input-noise:sigma=0.1,votes=25",
        "input-noise:sigma=0.1000001,votes=25",
        "input-noise:sigma=0.03137254901960784,votes=25",
    ]
    # (the ids these configurations had before: the identity keeps its own text)
    assert ids == ["bc8ab3b7905bb473", "d5e70d5a9c43a96d", "88b5a47659377a8f"]
    assert format_eps(0.1000001) == "0.1000001" != format_eps(0.1) == "0.1"
    assert [format_eps(e) for e in (8 / 255, 2 / 255, 0.3, 0.5, 2.0, 1e-6, 0.0313725)] == [
        "8/255", "2/255", "0.3", "0.5", "2", "1e-06", "0.0313725"
    ]  # fmt: skip


def test_a_spec_with_spaces_around_its_name_or_parameters_without_a_colon():
    """`pgd : steps = 3` said "unknown attack 'pgd '" (the spaces around the parameters were
    taken, not those around the name); `pgd;steps=3` (a semicolon for the colon) said "unknown
    attack 'pgd;steps=3'" with no word on where parameters go."""
    assert build_attack(" pgd : steps = 3 ").params["steps"] == 3
    for spec, fix in [
        ("pgd;steps=3", "pgd:steps=3"),
        ("pgd,steps=3,restarts=2", "pgd:steps=3,restarts=2"),
        ("pgd steps=3", "pgd:steps=3"),
        ("pgd;steps=3;restarts=2", "pgd:steps=3,restarts=2"),
        ("auto;stages=pgd:steps=5;restarts=2", "auto:stages=pgd:steps=5;restarts=2"),
    ]:
        with pytest.raises(InputError, match=re.escape(f"write {fix}")) as info:
            build_attack(spec)
        assert "parameters go after a colon" in str(info.value)
    with pytest.raises(InputError, match=re.escape("write bit-depth:bits=4")):
        build_defense("bit-depth;bits=4")
    with pytest.raises(InputError, match=re.escape("write NAME:key=value")):
        build_attack("steps=3")


def test_auto_stores_its_stages_by_their_registered_names():
    """`auto:stages=APGD-CE` stored the stage as typed, a run apart from `auto:stages=apgd-ce`
    (names match in any case and are stored in their registered spelling); runs written with
    the registered names keep their ids."""
    from robustkit.runner import RunConfig, prepare
    from robustkit.specs import registered_spec

    atk = robustkit.get_attack("auto", stages="APGD-CE:steps=5+Apgd-T:steps=5;n_target_classes=2")
    assert atk.stages == ("apgd-ce:steps=5", "apgd-t:steps=5;n_target_classes=2")
    assert registered_spec("AUTO:stages=APGD-CE+PGD", "auto") == "auto:stages=apgd-ce+pgd"
    ids = {}
    for spec in ("auto:stages=APGD-CE", "auto:stages=apgd-ce", "auto", "auto:stages=pgd + fgsm"):
        run = prepare(RunConfig(model="mnist/lenet5", n=2, attacks=(spec,), device="cpu"))
        ids[spec] = run.run_id
    assert ids["auto:stages=APGD-CE"] == ids["auto:stages=apgd-ce"] == "3858d13c45e9e804"
    assert ids["auto"] == "ccef1a599425a1a4"  # (as stored before this change)
    # (a stage with spaces is the run of the stage without since 2026-11-29; see below)
    assert ids["auto:stages=pgd + fgsm"] == "ee888604d89e9058"


def test_an_empty_parameter_is_a_one_line_error_and_an_empty_list_is_the_bare_name():
    """`pgd:,` (or a stray comma: `pgd:steps=2,`) was taken with the label as typed, a run apart
    from `pgd` (`pgd:steps=2`) though the attack is the same; it is a one-line error showing
    the spec without it. `pgd:` (no parameter after the colon) stays the run of `pgd`."""
    from robustkit.runner import RunConfig, prepare

    for spec, fix in [
        ("pgd:,", "write 'pgd'"),
        ("pgd:steps=2,", "write 'pgd:steps=2'"),
        ("pgd: , steps=2", "write 'pgd:steps=2'"),
        ("pgd:steps=2,,restarts=1", "write 'pgd:steps=2,restarts=1'"),
        ("bit-depth:bits=4,", "write 'bit-depth:bits=4'"),
    ]:
        kind = "defense" if spec.startswith("bit") else "attack"
        with pytest.raises(InputError, match=f"empty {kind} parameter in") as info:
            parse_attack_spec(spec, kind)
        assert fix in str(info.value) and "\n" not in str(info.value), info.value
    assert parse_attack_spec("pgd:") == parse_attack_spec("pgd: ") == ("pgd", {})
    # in auto's stages, whose parameters are joined by ;, it is said of the stage as written
    with pytest.raises(InputError, match=r"auto stage 'pgd:steps=2;'.*write 'pgd:steps=2'"):
        build_attack("auto:stages=pgd:steps=2;+fgsm")
    ids = {
        spec: prepare(RunConfig(model="mnist/lenet5", n=2, attacks=(spec,), device="cpu")).run_id
        for spec in ("pgd", "pgd:")
    }
    assert ids == {"pgd": "bd66d7e679b28c94", "pgd:": "bd66d7e679b28c94"}  # (as stored before)


def check_spellings(before: dict[str, tuple[str, str]], **config) -> None:
    """Each spec of ``before`` (spec: (its run id before spellings were made one, the written
    spec it is one run with)) is prepared as its written spec's run, under that spec's id and
    label, and keeps its own id before as ``stored_as`` (None for a written spec)."""
    from robustkit.runner import RunConfig, prepare

    for spec, (old_id, written) in before.items():
        run = prepare(RunConfig(model="mnist/lenet5", n=2, attacks=(spec,), device="cpu", **config))
        assert (list(run.attacks), run.run_id) == ([written], before[written][0]), spec
        assert (run.stored_as or (run.run_id,))[0] == old_id, spec
        assert (run.stored_as is None) == (spec == written), spec


def test_spellings_of_one_attack_are_one_run_and_written_ones_keep_their_ids():
    """Found by review: the run's label, part of its id, was the spec as typed, so spaces
    (`pgd: steps=2`), a parameter's other spelling (`step-size`), an auto stage's empty colon
    (`auto:stages=pgd:`) or an empty stage (`pgd++fgsm`) made another run of the same attack:
    the command typed otherwise did not resume it, and the leaderboard showed two attacks.
    They now have the label of the spec written without them; that spec keeps its id (every id
    below is the one stored before), and the id each spelling had is kept as ``stored_as``,
    under which a run stored so is resumed (tests/test_runs_cli.py)."""
    from robustkit.runner import RunConfig, prepare
    from robustkit.specs import registered_spec

    before = {  # spec: (its id before this change, the written spec it is one run with)
        "pgd": ("bd66d7e679b28c94", "pgd"),
        "pgd:steps=2": ("a5fd6353125c23f6", "pgd:steps=2"),
        "pgd: steps=2": ("d889213adbd6b78a", "pgd:steps=2"),
        "pgd:steps = 2": ("db5b158968fb594a", "pgd:steps=2"),
        "pgd:step_size=0.01": ("bb6ea67ff3b079c7", "pgd:step_size=0.01"),
        "pgd:step-size=0.01": ("f70e5094a842b1b2", "pgd:step_size=0.01"),
        "pgd:steps=2,restarts=2": ("d31677c19ee5001c", "pgd:steps=2,restarts=2"),
        "pgd:steps=2, restarts=2": ("a47dd6e402db9550", "pgd:steps=2,restarts=2"),
        "auto": ("ccef1a599425a1a4", "auto"),
        "auto:stages=pgd": ("5bbea613bc18e2d5", "auto:stages=pgd"),
        "auto:stages=pgd:": ("503cead9cd7d3fc8", "auto:stages=pgd"),
        "auto: stages=pgd": ("92f1c607fd98c7cc", "auto:stages=pgd"),
        "auto:stages=pgd+fgsm": ("ee888604d89e9058", "auto:stages=pgd+fgsm"),
        "auto:stages=pgd:+fgsm:": ("650395a9dd526782", "auto:stages=pgd+fgsm"),
        "auto:stages=pgd++fgsm": ("0557ad96dc606c37", "auto:stages=pgd+fgsm"),
        "auto:stages=pgd:steps=5;restarts=2+apgd-t": (
            "3acf1adf6748fe75",
            "auto:stages=pgd:steps=5;restarts=2+apgd-t",
        ),
        "auto:stages=pgd:steps=5; restarts=2+apgd-t": (
            "4816c29fd7f59917",
            "auto:stages=pgd:steps=5;restarts=2+apgd-t",
        ),
    }
    check_spellings(before)
    # twice in one run (the label of the second says so, as for a spec given twice)
    pair = ("pgd:steps=2", "pgd: steps=2")
    run = prepare(RunConfig(model="mnist/lenet5", n=2, attacks=pair, device="cpu"))
    assert list(run.attacks) == ["pgd:steps=2", "pgd:steps=2#2"]
    assert run.stored_as[0] == "38f4cb81c7f980cb"  # (its id before)
    assert list(run.stored_as[1].values()) == list(pair)
    # auto built in Python joins a stage's parameters with commas
    atk = robustkit.get_attack("auto", stages=["pgd: steps=5, restarts=2", "fgsm:"])
    assert atk.stages == ("pgd:steps=5,restarts=2", "fgsm")
    assert registered_spec(" PGD : steps = 2 , loss = ce ", "pgd") == "pgd:steps=2,loss=ce"


def test_values_written_otherwise_are_one_run_and_written_ones_keep_their_ids():
    """Found by review: a value's spelling was part of the run's label (and id), so
    `random_start=False`, `=no` and `=off` (parse_attack_spec's one False), `steps=010`,
    `step_size=1e-2` or `step_size=None` made another run of the same attack than
    `random_start=false`, `steps=10`, `step_size=0.01`, `step_size=none`: a resume typed
    otherwise started over, and the leaderboard showed two attacks. A value is now labelled
    in one spelling of what parse_attack_spec makes of it (a fraction such as 8/255 stays one,
    without spaces); the spellings so written keep their ids (every id below is the one stored
    before), and each other spelling keeps its id as ``stored_as`` (resumed by its command)."""
    from robustkit.specs import registered_spec

    before = {  # spec: (its id before this change, the written spec it is one run with)
        "pgd:random_start=false": ("5aae38b881258db8", "pgd:random_start=false"),
        "pgd:random_start=False": ("81268eb1c3773422", "pgd:random_start=false"),
        "pgd:random_start=no": ("537091148d581112", "pgd:random_start=false"),
        "pgd:random_start=off": ("d704c5c4634cf951", "pgd:random_start=false"),
        "pgd:steps=10": ("a214045717b12ad6", "pgd:steps=10"),
        "pgd:steps=010": ("2faab587297e35b9", "pgd:steps=10"),
        "pgd:steps=+10": ("89c394d07cf7c7f4", "pgd:steps=10"),
        "pgd:step_size=0.01": ("bb6ea67ff3b079c7", "pgd:step_size=0.01"),
        "pgd:step_size=1e-2": ("0d81d7ae3bf1cb17", "pgd:step_size=0.01"),
        "pgd:step_size=0.010": ("194be679ad2141a4", "pgd:step_size=0.01"),
        "pgd:step_size=1": ("85f98b391bc7f9b1", "pgd:step_size=1"),
        "pgd:step_size=1.0": ("949e714d2233659c", "pgd:step_size=1"),
        "pgd:step_size=none": ("5c413a574e060620", "pgd:step_size=none"),
        "pgd:step_size=None": ("866016f645c84d6a", "pgd:step_size=none"),
        "auto:stages=pgd:random_start=false": (
            "d3ed6385f66a91d5",
            "auto:stages=pgd:random_start=false",
        ),
        "auto:stages=pgd:random_start=False": (
            "c5411ef3417d7335",
            "auto:stages=pgd:random_start=false",
        ),
    }
    check_spellings(before)
    # in an 8/255 run: ε written as a fraction keeps its text (and id); 1e-05 is 1e-5
    before = {
        "pgd:eps=8/255": ("12aacf36667159be", "pgd:eps=8/255"),
        "pgd:eps=8 / 255": ("cd5006cc024b7362", "pgd:eps=8/255"),
        "pgd:step_size=1e-5": ("f7d458f31c0e2541", "pgd:step_size=1e-5"),
        "pgd:step_size=1e-05": ("9bd8fb2301eb4af9", "pgd:step_size=1e-5"),
        "pgd:step_size=0.00001": ("bca62f93b245ad19", "pgd:step_size=1e-5"),
        "pgd:random_start=true,early_stop=false": (
            "7c6f7a855d82e351",
            "pgd:random_start=true,early_stop=false",
        ),
        "pgd:random_start=On,early_stop=OFF": (
            "0963609f9ad5103b",
            "pgd:random_start=true,early_stop=false",
        ),
        "auto:stages=pgd:random_start=false;steps=5+fgsm": (
            "5e2f173855306b0a",
            "auto:stages=pgd:random_start=false;steps=5+fgsm",
        ),
        "auto:stages=pgd:random_start=no;steps=05+fgsm": (
            "8a60a71b518caa4a",
            "auto:stages=pgd:random_start=false;steps=5+fgsm",
        ),
    }
    check_spellings(before, eps="8/255")
    # a text that is no number or switch stays as written (loss=CE is for the attack to judge)
    assert registered_spec("pgd:loss=CE,steps=1_0", "pgd") == "pgd:loss=CE,steps=10"
    atk = robustkit.get_attack("auto", stages=["pgd:random_start=False, steps=05"])
    assert atk.stages == ("pgd:random_start=false,steps=5",)
