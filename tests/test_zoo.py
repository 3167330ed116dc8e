"""The zoo reproduces the measured clean accuracies of ../shared/models/MODELS.md."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from click.testing import CliRunner

import robustkit
from robustkit.cli import cli
from robustkit.errors import UnknownNameError, WeightsError
from robustkit.zoo import model_info, weights_sha256

ZOO = [
    "cifar10/resnet20",
    "cifar10/resnet32",
    "cifar10/resnet44",
    "cifar10/resnet56",
    "cifar10/resnet4b-at",
    "cifar10/resnet2b-at",
    "cifar10/cnn-wide-at",
    "cifar10/cnn-a-at",
    "cifar10/cnn-a-mix",
    "cifar10/convsmall-at",
    "mnist/lenet5",
    "mnist/lenet5-at",
    "mnist/cnn-certified",
    "mnist/cnn-a-at",
    "mnist/cnn-tiny-at",
]
FIELDS = {
    "dataset",
    "architecture",
    "training",
    "threat_model",
    "file",
    "url",
    "sha256",
    "licence",
    "source",
    "clean_accuracy_published",
    "clean_accuracy_measured",
    "input_shape",
    "num_classes",
    "normalization",
}


def test_all_fifteen_registered_with_complete_metadata():
    assert sorted(ZOO) == robustkit.list_models("cifar10/*") + robustkit.list_models("mnist/*")
    for name in ZOO:
        info = model_info(name)
        assert FIELDS <= set(info), name
        assert info["url"].startswith("https://") and info["url"].endswith(info["file"])
        assert len(info["sha256"]) == 64 and info["dataset"] == name.split("/")[0]


def test_models_cli_json_lists_all_metadata():
    result = CliRunner().invoke(cli, ["models", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["name"] for r in rows} >= set(ZOO)
    assert all(FIELDS <= set(r) for r in rows if r["name"] in ZOO)
    table = CliRunner().invoke(cli, ["models", "mnist/*"])
    assert table.exit_code == 0 and "mnist/lenet5-at" in table.output and "LGPL" in table.output


def _accuracy(model, x, y, batch=1000):
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(y), batch):
            correct += (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return 100.0 * correct / len(y)


@pytest.fixture(scope="module")
def test_sets():
    return {d: robustkit.load_dataset(d, "test") for d in ("cifar10", "mnist")}


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_full_test_set_accuracy(name, test_sets, zoo_model):
    model = zoo_model(name)
    assert not model.training and all(not p.requires_grad for p in model.parameters())
    x, y = test_sets[name.split("/")[0]]
    measured = model_info(name)["clean_accuracy_measured"]
    assert _accuracy(model, x, y) == pytest.approx(measured, abs=0.1)


def test_resnet20_first_thousand(zoo_model):
    x, y = robustkit.load_dataset("cifar10", n=1000)
    assert _accuracy(zoo_model("cifar10/resnet20"), x, y) == pytest.approx(91.5, abs=1e-9)
    assert weights_sha256(zoo_model("cifar10/resnet20")) == model_info("cifar10/resnet20")["sha256"]


def test_unknown_model_suggests():
    with pytest.raises(UnknownNameError, match="did you mean .*'cifar10/resnet20'"):
        robustkit.load_model("cifar10/resnet21")
    with pytest.raises(UnknownNameError, match="cifar10/resnet20"):
        robustkit.load_model("resnet20")


def test_user_file_factory_and_unsafe_checkpoint(tmp_path):
    src = tmp_path / "mynet.py"
    src.write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.fc = torch.nn.Linear(12, 3)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x.flatten(1))\n"
        "def build():\n"
        "    return Net()\n"
    )
    model = robustkit.load_model(f"{src}:build", device="cpu")
    assert not model.training and model(torch.rand(2, 3, 2, 2)).shape == (2, 3)

    import importlib.util

    spec = importlib.util.spec_from_file_location("mynet_for_test", src)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build()
    torch.save(net.state_dict(), tmp_path / "safe.pt")
    loaded = robustkit.load_model(f"{src}:build", device="cpu", weights=tmp_path / "safe.pt")
    assert torch.equal(loaded.fc.weight, net.fc.weight)
    assert weights_sha256(loaded) is not None

    torch.save({"state_dict": net.state_dict(), "extra": argparse.Namespace(a=1)}, tmp_path / "unsafe.pt")
    with pytest.raises(WeightsError, match="needs full unpickling.*--unsafe-load"):
        robustkit.load_model(f"{src}:build", device="cpu", weights=tmp_path / "unsafe.pt")
    ok = robustkit.load_model(
        f"{src}:build", device="cpu", weights=tmp_path / "unsafe.pt", allow_unsafe=True
    )
    assert torch.equal(ok.fc.weight, net.fc.weight)
    with pytest.raises(robustkit.RobustkitError, match="no callable 'nope'"):
        robustkit.load_model(f"{src}:nope")
