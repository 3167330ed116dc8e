"""White-box attacks on real zoo models reproduce the figures measured with plain PyTorch loops
(../shared/models/MODELS.md) and AutoAttack's on the first 1,000 test images."""

from __future__ import annotations

import pytest

import robustkit
from robustkit.attacks.auto import stage_robust_accuracy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cifar():
    return robustkit.load_dataset("cifar10", n=1000)


@pytest.fixture(scope="module")
def mnist():
    return robustkit.load_dataset("mnist", n=1000)


def test_resnet20_pgd10_and_fgsm(cifar, zoo_model):
    x, y = cifar
    model = zoo_model("cifar10/resnet20")
    pgd = robustkit.get_attack("pgd", eps=8 / 255, steps=10, step_size=2 / 255)(model, x, y)
    assert pgd.clean_accuracy == pytest.approx(0.915)
    assert pgd.robust_accuracy <= 0.01
    fgsm = robustkit.get_attack("fgsm", eps=8 / 255)(model, x, y)
    assert fgsm.robust_accuracy == pytest.approx(0.155, abs=0.02)


def test_resnet4b_at_pgd10_and_auto(cifar, zoo_model):
    x, y = cifar
    model = zoo_model("cifar10/resnet4b-at")
    pgd = robustkit.get_attack("pgd", eps=2 / 255, steps=10, step_size=0.5 / 255)(model, x, y)
    assert pgd.robust_accuracy == pytest.approx(0.618, abs=0.015)
    auto = robustkit.get_attack("auto", eps=2 / 255)(model, x, y)
    assert auto.robust_accuracy <= 0.612  # AutoAttack (standard): 60.9%
    assert stage_robust_accuracy(auto)[-1] == pytest.approx(auto.robust_accuracy)


def test_lenet5_pgd40(mnist, zoo_model):
    x, y = mnist
    attack = robustkit.get_attack("pgd", eps=0.3, steps=40, step_size=0.01)
    robust = attack(zoo_model("mnist/lenet5-at"), x, y)
    assert robust.robust_accuracy == pytest.approx(0.938, abs=0.015)
    standard = attack(zoo_model("mnist/lenet5"), x, y)
    assert standard.robust_accuracy == 0.0
