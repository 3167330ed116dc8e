"""The zoo reproduces the measured clean accuracies of ../shared/models/MODELS.md."""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import robustkit
from robustkit.cli import cli
from robustkit.errors import UnknownNameError, WeightsError
from robustkit.registry import MODELS
from robustkit.weights import sha256_file
from robustkit.zoo import model_info, state_sha256, torchvision_models, weights_sha256

from .helpers import one_intra_op_thread, unreadable

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
    "params",
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
    # each model's licence and its source, whose terms the licence is (the table showed the
    # licence alone: "BSD-3-Clause" of whom?)
    lenet = next(line for line in table.output.splitlines() if "mnist/lenet5-at" in line)
    assert "LGPL-3.0" in lenet and "github.com/BorealisAI/advertorch" in lenet


def _accuracy(model, x, y, batch=100, channels_last=False):
    """Top-1 accuracy in percent. ``channels_last`` runs a copy of the model in that memory
    layout (about twice as fast for the ResNets on a CPU; same function, same predictions)."""
    if channels_last:
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(y), batch):
            xb = x[i : i + batch]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            correct += (model(xb).argmax(1) == y[i : i + batch]).sum().item()
    return 100.0 * correct / len(y)


@pytest.fixture(scope="module")
def test_sets():
    return {d: robustkit.load_dataset(d, "test") for d in ("cifar10", "mnist")}


@pytest.fixture
def one_thread():
    """Run with one intra-op thread, then restore. On this 2-core machine, shared with other
    jobs, two threads made the ResNet passes up to 10x slower (threads waiting on each other)
    while one thread costs little even when the machine is quiet."""
    with one_intra_op_thread():
        yield


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_full_test_set_accuracy(name, test_sets, zoo_model, one_thread):
    model = zoo_model(name)
    assert not model.training and all(not p.requires_grad for p in model.parameters())
    info = model_info(name)
    assert sum(p.numel() for p in model.parameters()) == info["params"]
    assert weights_sha256(model) == info["sha256"] == weights_sha256(name)
    x, y = test_sets[info["dataset"]]
    accuracy = _accuracy(model, x, y, channels_last=True)
    assert accuracy == pytest.approx(info["clean_accuracy_measured"], abs=0.1)


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

    torch.save(
        {"state_dict": net.state_dict(), "extra": argparse.Namespace(a=1)}, tmp_path / "unsafe.pt"
    )
    with pytest.raises(WeightsError, match="needs full unpickling.*allow_unsafe=True$"):
        robustkit.load_model(f"{src}:build", device="cpu", weights=tmp_path / "unsafe.pt")
    ok = robustkit.load_model(
        f"{src}:build", device="cpu", weights=tmp_path / "unsafe.pt", allow_unsafe=True
    )
    assert torch.equal(ok.fc.weight, net.fc.weight)
    with pytest.raises(robustkit.RobustkitError, match="no callable 'nope'"):
        robustkit.load_model(f"{src}:nope")
    with pytest.raises(robustkit.RobustkitError, match="does not name a factory"):
        robustkit.load_model(str(src))
    with pytest.raises(robustkit.RobustkitError, match="absent.py does not exist"):
        robustkit.load_model(f"{tmp_path}/absent.py:build")


def test_wrong_or_damaged_checkpoint_is_a_one_line_error(tmp_path):
    lenet = tmp_path / "lenet.pt"
    torch.save(robustkit.load_model("mnist/lenet5", device="cpu").net.state_dict(), lenet)
    with pytest.raises(WeightsError, match="does not fit mnist/cnn-tiny-at") as info:
        robustkit.load_model("mnist/cnn-tiny-at", device="cpu", weights=lenet)
    assert "\n" not in str(info.value)
    with pytest.raises(WeightsError, match="not in the checkpoint format of cifar10/resnet20"):
        robustkit.load_model("cifar10/resnet20", device="cpu", weights=lenet)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is no checkpoint")
    with pytest.raises(WeightsError, match="cannot read checkpoint .*garbage.pt") as info:
        robustkit.load_model("mnist/lenet5", device="cpu", weights=garbage)
    assert "\n" not in str(info.value)


def test_zoo_import_is_cheap():
    """Listing models loads no weights and does not import torchvision."""
    code = (
        "import sys, robustkit; names = robustkit.list_models(); "
        "assert 'torchvision' not in sys.modules, 'torchvision imported'; print(len(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == len(ZOO) + len(torchvision_models.ARCHS)


def test_torchvision_names_are_listed():
    import torchvision

    assert set(torchvision_models.ARCHS) <= set(torchvision.models.list_models(torchvision.models))
    names = robustkit.list_models("torchvision/*")
    assert "torchvision/resnet50" in names and len(names) == len(torchvision_models.ARCHS)
    assert MODELS.entry("torchvision/resnet50").metadata["dataset"] == "imagenet"
    info = model_info("torchvision/efficientnet_v2_l")
    assert info["normalization"] == MODELS.entry(info["name"]).metadata["normalization"]
    assert info["dataset"] == "imagenet" and info["params"] > 10**8
    assert info["url"].startswith("https://") and info["clean_accuracy_published"] > 80
    with pytest.raises(UnknownNameError, match="unknown torchvision model 'resnet51'"):
        robustkit.load_model("torchvision/resnet51")


def _cache_as_torchvision(monkeypatch, tmp_path, arch: str, content) -> Path:
    """Save ``content`` where torchvision keeps ``arch``'s weights, under a name that carries
    its own sha256 prefix (torchvision's names carry that of the real file)."""
    staged = tmp_path / "staged.pth"
    torch.save(content, staged)
    real = torchvision_models.cached_checkpoint(arch)
    stem = real.name.rsplit("-", 1)[0]
    cached = real.parent / f"{stem}-{sha256_file(staged)[:8]}.pth"
    cached.parent.mkdir(parents=True, exist_ok=True)
    staged.replace(cached)
    monkeypatch.setattr(torchvision_models, "cached_checkpoint", lambda a: cached)
    return cached


def test_torchvision_model_uses_cached_weights_and_normalizes(monkeypatch, tmp_path):
    """Weights in torch's hub cache are used (torchvision's way); normalization is inside."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    net = torchvision.models.squeezenet1_1().eval()
    cached = _cache_as_torchvision(monkeypatch, tmp_path, "squeezenet1_1", net.state_dict())
    model = robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), net((x - mean) / std), atol=1e-5)
    assert weights_sha256(model) == weights_sha256("torchvision/squeezenet1_1") is not None
    # an explicit checkpoint for a torchvision architecture (here: DataParallel-style keys)
    mine = tmp_path / "mine.pth"
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, mine)
    cached.unlink()
    explicit = robustkit.load_model("torchvision/squeezenet1_1", device="cpu", weights=mine)
    with torch.no_grad():
        assert torch.equal(explicit(x), model(x))
    assert weights_sha256(explicit) == sha256_file(mine) != weights_sha256(model)
    with pytest.raises(WeightsError, match="squeezenet1_1 are not in .*TORCH_HOME"):
        robustkit.load_model("torchvision/squeezenet1_1", device="cpu", allow_download=False)


def test_torchvision_without_network_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # a closed port: no network
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(
        WeightsError, match="cannot get torchvision's weights for squeezenet1_1"
    ) as e:
        robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    assert "\n" not in str(e.value) and "squeezenet1_1-" in str(e.value)
    assert weights_sha256("torchvision/squeezenet1_1") is None


def test_plugin_factory_and_info_of_user_files(tmp_path):
    calls = []

    def factory(weights_path=None):
        calls.append(weights_path)
        return torch.nn.Linear(4, 2)

    MODELS.add("test/plugin-linear", factory, dataset="none")
    try:
        model = robustkit.load_model("test/plugin-linear", device="cpu")
        assert not model.training and calls == [None] and weights_sha256(model) is None
    finally:
        MODELS._entries.pop("test/plugin-linear")
    with pytest.raises(robustkit.RobustkitError, match="net.py does not exist"):
        model_info(f"{tmp_path}/net.py:build")  # (a typo was met with "--data is needed")
    (tmp_path / "net.py").write_text("def build():\n    pass\n")
    info = model_info(f"{tmp_path}/net.py:build")  # known without running the file
    assert info["name"].endswith("net.py:build") and info["sha256"] is None


def test_plugin_factories_of_either_documented_signature(tmp_path):
    """MODELS documents a plug-in factory as ``(weights_path: str | None) -> nn.Module``; one
    written so failed with a TypeError traceback when no weights were given, and weights given
    to a factory that takes none also ended in a TypeError traceback."""
    calls = []

    def needs_path(weights_path):
        calls.append(weights_path)
        return torch.nn.Linear(4, 2)

    MODELS.add("test/plugin-path", needs_path, dataset="none")
    MODELS.add("test/plugin-none", lambda: torch.nn.Linear(4, 2), dataset="none")
    ckpt = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), ckpt)
    try:
        robustkit.load_model("test/plugin-path", device="cpu")
        robustkit.load_model("test/plugin-path", weights=ckpt, device="cpu")
        assert calls == [None, ckpt]
        with pytest.raises(robustkit.RobustkitError, match="takes no weights file") as e:
            robustkit.load_model("test/plugin-none", weights=ckpt, device="cpu")
        assert "\n" not in str(e.value) and "test/plugin-none" in str(e.value)
    finally:
        MODELS._entries.pop("test/plugin-path")
        MODELS._entries.pop("test/plugin-none")


def test_load_model_errors_name_its_own_arguments(tmp_path):
    """load_model's advice named the CLI's options, which its caller does not have: weights for
    a plug-in that takes none said "drop --weights", a checkpoint that needs full unpickling
    "pass allow_unsafe=True (CLI: --unsafe-load)" and, without a GPU, device='cuda' "(--device
    cpu)". Each names load_model's own argument now."""
    ckpt = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), ckpt)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"state_dict": {}, "args": argparse.Namespace(a=1)}, unsafe)
    MODELS.add("test/plugin-none", lambda: torch.nn.Linear(4, 2), dataset="none")
    mistakes = [
        (dict(name="test/plugin-none", weights=ckpt), "; drop weights="),
        (dict(name="mnist/lenet5", weights=unsafe), "If you trust it, pass allow_unsafe=True"),
    ]
    if not torch.cuda.is_available():
        mistakes.append((dict(name="mnist/lenet5", device="cuda"), "auto (device='cpu')"))
    try:
        for kwargs, ending in mistakes:
            with pytest.raises(robustkit.RobustkitError) as info:
                robustkit.load_model(**{"device": "cpu", **kwargs})
            message = str(info.value)
            assert message.endswith(ending), message
            assert "--" not in message and "CLI" not in message, message
    finally:
        MODELS._entries.pop("test/plugin-none")


def test_a_plugin_without_a_module_or_its_weights_is_a_one_line_error(tmp_path):
    """A factory that returned no nn.Module ended in an AttributeError traceback (from
    model.eval()); a weights path that is not there, in the factory's FileNotFoundError."""

    def reads(weights_path=None):
        if weights_path is not None:
            torch.load(weights_path, weights_only=True)
        return "not a model"

    MODELS.add("test/plugin-str", reads, dataset="none")
    try:
        with pytest.raises(robustkit.RobustkitError, match="returned str, not a torch.nn.Module"):
            robustkit.load_model("test/plugin-str", device="cpu")
        with pytest.raises(WeightsError, match="missing.pt does not exist; check the path"):
            robustkit.load_model("test/plugin-str", weights=tmp_path / "missing.pt", device="cpu")
        # a directory was passed to the factory, then "cannot read weights file ... (Is a
        # directory); make it readable (chmod a+r ...)"
        with pytest.raises(WeightsError, match="is a directory, not a checkpoint file") as e:
            robustkit.load_model("test/plugin-str", weights=tmp_path, device="cpu")
        assert "chmod" not in str(e.value)
    finally:
        MODELS._entries.pop("test/plugin-str")


def test_an_error_in_a_model_file_given_by_a_relative_path_names_its_line(monkeypatch, tmp_path):
    """The line of the user's file was named only for an absolute path: Python names the
    imported file's frames by their absolute path, which a relative path never equalled."""
    (tmp_path / "net.py").write_text("def build():\n    raise RuntimeError('boom')\n")
    (tmp_path / "bad.py").write_text("x = 1\nraise ValueError('bad import')\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(robustkit.RobustkitError, match=r"boom at net\.py line 2$"):
        robustkit.load_model("net.py:build", device="cpu")
    with pytest.raises(robustkit.RobustkitError, match=r"bad import at bad\.py line 2$"):
        robustkit.load_model("bad.py:build", device="cpu")


def test_a_model_file_imports_the_modules_beside_it(monkeypatch, tmp_path):
    """Found by review: a model file importing a module next to it (``from rk_layers import
    head``) failed with "No module named 'rk_layers'", from any directory, although the same
    file runs as a script. Its folder is on sys.path while it is imported and built, and only
    then."""
    import sys

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "rk_layers_beside.py").write_text(
        "import torch\ndef head():\n    return torch.nn.Linear(4, 2)\n"
    )
    (folder / "net.py").write_text(
        "from rk_layers_beside import head\ndef build():\n"
        "    import rk_layers_beside\n    return rk_layers_beside.head()\n"
    )
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    try:
        model = robustkit.load_model("project/net.py:build", device="cpu")
    finally:
        sys.modules.pop("rk_layers_beside", None)
    assert isinstance(model, torch.nn.Linear)
    assert sys.path == path_before


def test_every_checkpoint_hash_is_a_one_line_error_when_unreadable(monkeypatch, tmp_path):
    """Found by review: only the zoo's and torchvision's cached files were hashed behind the
    one-line error; a plug-in's weights (here a directory, which its factory accepts: now
    refused before it runs, as a directory has no sha256 to record) and a checkpoint that
    turns unreadable once loaded ended in an OSError traceback."""
    MODELS.add("test/plugin-dir", lambda weights: torch.nn.Linear(4, 2), dataset="none")
    try:
        with pytest.raises(WeightsError, match="is a directory, not a checkpoint file") as e:
            robustkit.load_model("test/plugin-dir", weights=tmp_path, device="cpu")
    finally:
        MODELS._entries.pop("test/plugin-dir")
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)
    (tmp_path / "net.py").write_text(
        "import torch\ndef build():\n    return torch.nn.Linear(4, 2)\n"
    )
    ckpt = tmp_path / "net.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), ckpt)
    real_load = robustkit.zoo.loading.safe_load

    def load_then_lose_access(path, allow_unsafe, named=None):
        state = real_load(path, allow_unsafe, named)
        unreadable(monkeypatch, Path(path))  # permissions changed between reading and hashing
        return state

    monkeypatch.setattr(robustkit.zoo.loading, "safe_load", load_then_lose_access)
    with pytest.raises(WeightsError, match="cannot read weights file .*Permission denied"):
        robustkit.load_model(f"{tmp_path}/net.py:build", weights=ckpt, device="cpu")


def test_damaged_checkpoint_is_not_offered_unsafe_loading(tmp_path):
    """Only a file that names a class the safe unpickler refuses may be loaded unsafely; bytes
    that are no checkpoint at all are a damaged file (download it again)."""
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(range(256)) * 8)  # starts with opcode 0: not a pickle
    truncated = tmp_path / "truncated.pt"
    good = tmp_path / "good.pt"
    torch.save({"w": torch.zeros(3)}, good)
    truncated.write_bytes(good.read_bytes()[:200])
    for path in (damaged, truncated):
        with pytest.raises(WeightsError, match="damaged or not a torch checkpoint") as info:
            robustkit.load_model("mnist/lenet5", device="cpu", weights=path)
        message = str(info.value)
        assert "allow_unsafe" not in message and "unsafe" not in message
        assert "download it again" in message and "\n" not in message
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"state_dict": {}, "args": argparse.Namespace(a=1)}, unsafe)
    with pytest.raises(WeightsError, match="GLOBAL argparse.Namespace.*allow_unsafe=True"):
        robustkit.load_model("mnist/lenet5", device="cpu", weights=unsafe)


def test_offline_torchvision_model_is_not_downloaded(monkeypatch, tmp_path):
    import urllib.request

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("ROBUSTKIT_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("ROBUSTKIT_OFFLINE=1 but a download was attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsError, match="squeezenet1_1-.*ROBUSTKIT_OFFLINE") as info:
        robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)
    assert not any(tmp_path.rglob("*.pth"))


def test_state_dict_of_a_loaded_model_loads_back(tmp_path):
    """``torch.save(load_model(name).state_dict(), f)`` then ``load_model(name, weights=f)``."""
    x = torch.rand(3, 3, 32, 32)
    for name in ("cifar10/resnet4b-at", "cifar10/resnet20"):
        model = robustkit.load_model(name, device="cpu")
        saved = tmp_path / "saved.pt"
        torch.save(model.state_dict(), saved)
        again = robustkit.load_model(name, device="cpu", weights=saved)
        with torch.no_grad():
            assert torch.equal(again(x), model(x))
        assert weights_sha256(again) == sha256_file(saved)
    lenet = robustkit.load_model("mnist/lenet5", device="cpu")  # no normalization buffers
    torch.save(lenet.state_dict(), tmp_path / "lenet.pt")
    again = robustkit.load_model("mnist/lenet5", device="cpu", weights=tmp_path / "lenet.pt")
    assert torch.equal(again.net.conv1.weight, lenet.net.conv1.weight)
    # another model's wrapped state dict still does not fit
    with pytest.raises(WeightsError, match="does not fit cifar10/resnet4b-at"):
        robustkit.load_model("cifar10/resnet4b-at", device="cpu", weights=saved)


def test_state_mismatch_shows_a_few_keys_and_counts(tmp_path):
    saved = tmp_path / "resnet20.pt"
    torch.save(robustkit.load_model("cifar10/resnet20", device="cpu").state_dict(), saved)
    with pytest.raises(WeightsError, match="does not fit cifar10/resnet56") as info:
        robustkit.load_model("cifar10/resnet56", device="cpu", weights=saved)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    assert re.search(r"\d+ missing key\(s\): net\.\S+, net\.\S+, net\.\S+ and \d+ more", message)


def test_model_names_are_case_insensitive():
    model = robustkit.load_model("CIFAR10/ResNet20", device="cpu")
    assert model.robustkit_name == "cifar10/resnet20"
    assert model_info("MNIST/LeNet5")["name"] == "mnist/lenet5"


def test_torchvision_names_are_case_insensitive_in_model_info():
    """load_model took torchvision/ResNet18, but model_info (which evaluate calls first)
    said it was unknown, and TorchVision/resnet18 lacked torchvision's own details."""
    for name in ("torchvision/ResNet18", "TorchVision/resnet18"):
        info = model_info(name)
        assert info["name"] == "torchvision/resnet18"
        assert info["input_shape"] == [3, 224, 224] and info["url"].startswith("https://")


def test_state_dict_of_a_loaded_torchvision_model_loads_back(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    state = torchvision.models.squeezenet1_1().state_dict()
    _cache_as_torchvision(monkeypatch, tmp_path, "squeezenet1_1", state)
    model = robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    saved = tmp_path / "saved.pt"
    torch.save(model.state_dict(), saved)
    again = robustkit.load_model("torchvision/squeezenet1_1", device="cpu", weights=saved)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_state_sha256_names_the_parameters_and_buffers():
    """A model without a checkpoint file is known by its state: equal for an equal state (a
    copy, another memory layout), different for any other value, dtype, shape or name; buffers
    of every kind (bool, bfloat16, quantized, sparse) hash."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    net.register_buffer("mask", torch.rand(4) > 0.5)
    net.register_buffer("bf16", torch.rand(4).bfloat16())
    net.register_buffer("q", torch.quantize_per_tensor(torch.rand(3), 0.1, 0, torch.quint8))
    net.register_buffer("sparse", torch.eye(3).to_sparse())
    digest = state_sha256(net)
    assert len(digest) == 64 and state_sha256(copy.deepcopy(net)) == digest
    layout = copy.deepcopy(net).to(memory_format=torch.channels_last)
    assert state_sha256(layout) == digest
    changed = copy.deepcopy(net)
    with torch.no_grad():
        changed[0].weight[0, 0, 0, 0] += 1e-6
    assert state_sha256(changed) != digest
    other = copy.deepcopy(net).double()
    assert state_sha256(other) != digest
    flipped = copy.deepcopy(net)
    flipped.mask = ~flipped.mask
    assert state_sha256(flipped) != digest


class _RunsCode:
    """Unpickling this runs code (it touches a file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_torchvision_weights_are_read_without_running_code(monkeypatch, tmp_path):
    """torch.hub unpickled torchvision's cached file in full (weights_only=False): a file put in
    the cache ran its code on load. Now it is read like every checkpoint, and a file whose
    sha256 does not start with the prefix its name carries is refused."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    marker = tmp_path / "ran"
    _cache_as_torchvision(monkeypatch, tmp_path, "squeezenet1_1", {"x": _RunsCode(marker)})
    with pytest.raises(WeightsError, match="cannot be loaded with weights_only=True"):
        robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    assert not marker.exists()
    cached = torchvision_models.cached_checkpoint("squeezenet1_1")
    torch.save({"other": torch.zeros(1)}, cached)  # same name, other content
    with pytest.raises(WeightsError, match=r"is not torchvision's weights for squeezenet1_1"):
        robustkit.load_model("torchvision/squeezenet1_1", device="cpu")


def test_torchvision_builders_still_set_their_options_from_the_weights(monkeypatch, tmp_path):
    """The weights are read by robustkit but the model is built by torchvision's builder, which
    sets options from the weights (GoogLeNet: transform_input=True)."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    ref = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    _cache_as_torchvision(monkeypatch, tmp_path, "googlenet", ref.state_dict())
    model = robustkit.load_model("torchvision/googlenet", device="cpu")
    assert model.net.transform_input and model.net.aux1 is None
    ref.eval().aux_logits, ref.transform_input = False, True
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), ref((x - mean) / std), atol=1e-5)


def test_torchvision_weights_download_quietly_and_checked(monkeypatch, tmp_path, capfd):
    """torch.hub printed "Downloading: ..." on stdout, which broke `--format json`; the
    download is now robustkit's (atomic, held to the name's sha256 prefix)."""
    import torchvision

    from robustkit import weights

    from .test_weights import _http_ok, _no_proxy, _Replies

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _no_proxy(monkeypatch)
    torch.manual_seed(0)
    cached = _cache_as_torchvision(
        monkeypatch, tmp_path, "squeezenet1_1", torchvision.models.squeezenet1_1().state_dict()
    )
    body = cached.read_bytes()
    cached.unlink()
    server = _Replies([_http_ok(b"not the weights"), _http_ok(body)])
    real = weights.download
    monkeypatch.setattr(
        torchvision_models, "download", lambda url, *a, **k: real(server.url, *a, **k)
    )
    try:
        with pytest.raises(WeightsError, match=r"sha256 mismatch .*expected [0-9a-f]{8}…"):
            robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
        assert not cached.exists()
        model = robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    finally:
        server.close()
    assert cached.read_bytes() == body and weights_sha256(model) == sha256_file(cached)
    assert capfd.readouterr().out == ""


def test_unreadable_torchvision_weights_are_a_one_line_error(monkeypatch, tmp_path):
    """Found by review (as for a zoo checkpoint): torchvision's cached file without read
    permission ended with a PermissionError traceback from hashing it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = _cache_as_torchvision(monkeypatch, tmp_path, "squeezenet1_1", {})
    unreadable(monkeypatch, cached)
    with pytest.raises(WeightsError, match="cannot read weights file .*Permission denied") as e:
        robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    assert "\n" not in str(e.value) and str(cached) in str(e.value)


def test_a_directory_in_place_of_torchvision_weights_is_named(monkeypatch, tmp_path):
    """A directory under the weights file's name in $TORCH_HOME was downloaded over (failing
    at its end with "Is a directory") or, offline, "not in" the directory that held it."""
    from robustkit.zoo.torchvision_models import cached_checkpoint

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("ROBUSTKIT_OFFLINE", "1")
    cached_checkpoint("squeezenet1_1").mkdir(parents=True)
    with pytest.raises(WeightsError, match="is a directory, not a checkpoint file") as e:
        robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    assert "\n" not in str(e.value) and "squeezenet1_1-" in str(e.value)


def test_an_error_in_a_plugin_factory_is_a_one_line_error_naming_its_line(tmp_path):
    """A registered model's factory that raised (a wrong --weights file, a path it expects)
    ended the CLI in a traceback; a file.py:factory model's error was one line naming its line."""
    import inspect

    def needs_its_file(weights_path=None):
        if weights_path is None:
            raise FileNotFoundError("no checkpoint at /data/ckpt.pt\nsecond line")
        return torch.nn.Linear(4, 2)

    line = inspect.getsourcelines(needs_its_file)[1] + 2
    MODELS.add("test/plugin-raises", needs_its_file, dataset="cifar10")
    try:
        with pytest.raises(robustkit.RobustkitError) as e:
            robustkit.load_model("test/plugin-raises", device="cpu")
        text = str(e.value)
        assert "\n" not in text and "test/plugin-raises" in text
        assert "FileNotFoundError: no checkpoint at /data/ckpt.pt" in text
        assert f"{__file__} line {line}" in text
        assert isinstance(e.value.__cause__, FileNotFoundError)  # kept for a traceback
        result = CliRunner().invoke(cli, ["evaluate", "--model", "test/plugin-raises"])
        assert result.exit_code != 0 and result.output.count("\n") == 1
        assert "Traceback" not in result.output and "test/plugin-raises" in result.output
    finally:
        MODELS._entries.pop("test/plugin-raises")


def test_a_checkpoint_of_another_form_says_what_it_holds(tmp_path):
    """A checkpoint holding a tensor or a list, or a 'state_dict' that is no dict, was "not in
    the checkpoint format of cifar10/resnet20 (no too many indices for tensor of dimension 1)",
    after a torch UserWarning about indexing a tensor."""
    import warnings

    cases = {
        "tensor.pt": (torch.zeros(3), "it holds a Tensor, not a dict"),
        "list.pt": ([1, 2], "it holds a list, not a dict"),
        "sd-list.pt": ({"state_dict": [1, 2]}, "its 'state_dict' is a list, not a dict"),
        "other.pt": ({"weights": {}}, "no 'state_dict'"),
    }
    for file, (obj, says) in cases.items():
        torch.save(obj, tmp_path / file)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(WeightsError, match="not in the checkpoint format") as e:
                robustkit.load_model("cifar10/resnet20", device="cpu", weights=tmp_path / file)
        assert f"({says})" in str(e.value) and "\n" not in str(e.value), file
    with pytest.raises(WeightsError, match=r"\(its 'state_dict' is a list without a state dict"):
        robustkit.load_model("cifar10/convsmall-at", device="cpu", weights=tmp_path / "sd-list.pt")


def test_model_info_is_the_callers_copy():
    """model_info returned the registry's own lists and dicts: a notebook's
    ``info["input_shape"].insert(0, 8)`` (a batch shape) changed the zoo's metadata for the
    session, and every later load of the model refused its own data set's images."""
    info = model_info("mnist/cnn-tiny-at")
    info["input_shape"].insert(0, 8)
    info["normalization"] = None
    model_info("cifar10/resnet20")["normalization"]["mean"].append(0.0)
    assert model_info("mnist/cnn-tiny-at")["input_shape"] == [1, 28, 28]
    assert len(model_info("cifar10/resnet20")["normalization"]["mean"]) == 3
    model = robustkit.load_model("mnist/cnn-tiny-at", device="cpu")
    assert model.robustkit_input_shape == (1, 28, 28)


def test_the_networks_own_state_dict_loads_into_every_zoo_model(tmp_path):
    """A plain state dict of the network (``torch.save(net.state_dict(), f)``, what a training
    script writes), or one under 'state_dict', loaded into some zoo models and not others,
    as their sources' files happen to be laid out: cifar10/resnet20 refused the plain one ("no
    'state_dict'"), cifar10/convsmall-at both, mnist/lenet5 the one under 'state_dict'."""
    x = torch.rand(2, 3, 32, 32)
    for name in ("cifar10/resnet2b-at", "cifar10/convsmall-at", "cifar10/resnet20"):
        model = robustkit.load_model(name, device="cpu")
        for i, saved in enumerate(
            (model.net.state_dict(), {"state_dict": model.net.state_dict()}),
        ):
            path = tmp_path / f"{i}.pt"
            torch.save(saved, path)
            again = robustkit.load_model(name, device="cpu", weights=path)
            with torch.no_grad():
                assert torch.equal(again(x), model(x)), (name, i)
    lenet = robustkit.load_model("mnist/lenet5", device="cpu")
    torch.save({"state_dict": lenet.net.state_dict()}, tmp_path / "lenet.pt")
    again = robustkit.load_model("mnist/lenet5", device="cpu", weights=tmp_path / "lenet.pt")
    assert torch.equal(again.net.conv1.weight, lenet.net.conv1.weight)


def test_an_unwritable_torch_home_names_torch_home(monkeypatch):
    """torchvision's weights go to $TORCH_HOME/hub/checkpoints, but where that could not be
    written the error said "set ROBUSTKIT_WEIGHTS to a directory you can write", which
    torchvision's weights do not use."""
    monkeypatch.setenv("TORCH_HOME", "/proc/robustkit-torch-home")
    monkeypatch.delenv("ROBUSTKIT_OFFLINE", raising=False)
    with pytest.raises(WeightsError, match="cannot write .*set TORCH_HOME to a directory") as e:
        robustkit.load_model("torchvision/squeezenet1_1", device="cpu")
    assert "ROBUSTKIT_WEIGHTS" not in str(e.value) and "\n" not in str(e.value)


def test_every_zoo_architecture_can_be_scripted():
    """torch.jit.script(load_model("cifar10/resnet4b-at")) failed (resnet2b-at too): its
    forward looked its stages up by getattr(self, f"layer{i}"), which TorchScript cannot
    compile; the attacks take scripted models, so every zoo architecture must script, with
    the outputs of the eager model and the checkpoints' state-dict keys."""
    from robustkit.zoo.architectures import Normalized
    from robustkit.zoo.catalog import ZooSpec

    specs = {}
    for entry in MODELS:
        if isinstance(entry.obj, ZooSpec):
            specs.setdefault(entry.obj.build, (entry.name, entry.obj))
    assert any("resnet4b" in name for name, _ in specs.values())
    torch.manual_seed(0)
    for name, spec in specs.values():
        model = Normalized(spec.build(), spec.mean, spec.std).eval()
        channels = 3 if name.startswith("cifar10/") else 1
        size = 32 if channels == 3 else 28
        x = torch.rand(2, channels, size, size)
        scripted = torch.jit.script(model)
        assert torch.equal(scripted(x), model(x)), name
        assert list(scripted.state_dict()) == list(model.state_dict()), name
