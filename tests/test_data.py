"""Data sets: shapes, dtypes, official order, subsets, clear errors; devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robustkit
from robustkit.data import dataset_size
from robustkit.errors import DataError, RobustkitError


def test_cifar10_and_mnist():
    x, y = robustkit.load_dataset("cifar10", n=5)
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.dtype == torch.int64 and y.tolist() == [3, 8, 8, 0, 6]
    assert 0 <= x.min() and x.max() <= 1
    xm, ym = robustkit.load_dataset("mnist", n=5)
    assert xm.shape == (5, 1, 28, 28) and ym.tolist() == [7, 2, 1, 0, 4]
    xt, yt = robustkit.load_dataset("cifar10", "train", n=5)
    assert yt.tolist() == [6, 9, 9, 4, 1]
    assert dataset_size("cifar10") == 10000


def test_subsets_are_deterministic():
    x, y = robustkit.load_dataset("cifar10", n=20)
    x2, y2 = robustkit.load_dataset("cifar10", n=10, offset=10)
    assert torch.equal(x[10:], x2) and torch.equal(y[10:], y2)
    x3, y3 = robustkit.load_dataset("cifar10", indices=[19, 10])
    assert torch.equal(x3[0], x[19]) and torch.equal(y3, y[[19, 10]])
    # indices are whole numbers, and not given beside n/offset (1.7 was read as sample 1, and
    # n beside indices was ignored)
    with pytest.raises(DataError, match="flat list of whole numbers, got float64"):
        robustkit.load_dataset("cifar10", indices=[1.7])
    with pytest.raises(DataError, match="either indices or n/offset"):
        robustkit.load_dataset("cifar10", n=5, indices=[1, 2])


def test_errors():
    with pytest.raises(DataError, match="has 10000 samples; n=20000"):
        robustkit.load_dataset("cifar10", n=20000)
    with pytest.raises(DataError, match="n=10 from offset=9995"):
        robustkit.load_dataset("cifar10", n=10, offset=9995)
    with pytest.raises(DataError, match="unknown data set 'cifar100'"):
        robustkit.load_dataset("cifar100")
    with pytest.raises(DataError, match="no split 'train'"):
        robustkit.load_dataset("mnist", "train")
    for bad in (1.5, "10", True):
        with pytest.raises(DataError, match="n must be a whole number"):
            robustkit.load_dataset("mnist", n=bad)
    for bad in (0.5, None):  # (None ended in a TypeError from int(None))
        with pytest.raises(DataError, match="offset must be a whole number"):
            robustkit.load_dataset("mnist", n=2, offset=bad)
    assert robustkit.load_dataset("mnist", n=np.int64(2), offset=np.int32(1))[1].tolist() == [2, 1]


def test_missing_data_directory(monkeypatch, tmp_path):
    from robustkit import data

    monkeypatch.setenv("ROBUSTKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(data, "_CACHE", {})
    with pytest.raises(DataError, match="not found in .*ROBUSTKIT_DATA") as info:
        robustkit.load_dataset("mnist", n=5, download=False)
    assert "\n" not in str(info.value)


def test_a_failed_download_leaves_no_empty_directories(monkeypatch, tmp_path):
    """torchvision makes its folders before its download fails: they were left behind (and the
    data directory itself, when it was missing)."""
    from robustkit import data

    theirs = []

    def failing(name, split, root, download):
        (root / "MNIST" / "raw").mkdir(parents=True)
        theirs.append(tmp_path / "kept" / f"theirs{len(theirs)}")  # another program's, meanwhile
        theirs[-1].mkdir()
        raise DataError("download failed")

    monkeypatch.setattr(data, "_read_torchvision", failing)
    monkeypatch.setattr(data, "_CACHE", {})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kept").mkdir()
    for where in ("new/data", "kept"):  # a relative one is read from the current directory
        monkeypatch.setenv("ROBUSTKIT_DATA", where)
        with pytest.raises(DataError, match="download failed"):
            robustkit.load_dataset("mnist", n=5)
        assert sorted(tmp_path.rglob("*")) == [tmp_path / "kept", *theirs]


def test_generic_npz(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.zeros((4, 8, 8, 3), np.uint8) + 255, y=np.arange(4))
    x, y = robustkit.load_dataset(str(path))
    assert x.shape == (4, 3, 8, 8) and float(x.max()) == 1.0 and y.tolist() == [0, 1, 2, 3]
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(DataError, match="must hold arrays 'x' and 'y'"):
        robustkit.load_dataset(str(tmp_path / "bad.npz"))
    # NaN passed the [0, 1] check (comparisons with NaN are false); 0-255 integers were
    # called float images
    x = np.random.rand(4, 3, 8, 8).astype(np.float32)
    x[2, 0, 1, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(4))
    with pytest.raises(DataError, match=r"nan.npz: images contain NaN.*image 2"):
        robustkit.load_dataset(str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "ints.npz", x=(x * 0).astype(np.int64) + 200, y=np.arange(4))
    with pytest.raises(DataError, match=r"ints.npz: images must be uint8 .* got int64"):
        robustkit.load_dataset(str(tmp_path / "ints.npz"))


def test_a_data_file_is_named_without_a_split(tmp_path):
    """A data file's errors named it "mine.npz/test", a path that is not there."""
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.zeros((5, 8, 8, 3), np.uint8), y=np.arange(5))
    for kwargs, match in (
        ({"n": 10}, "has 5 samples; n=10 from offset=0 asks for 10; use n=5 or fewer$"),
        ({"offset": 5}, "offset=5 is past the end of"),
        ({"indices": [7]}, "must lie in 0..4 for"),
    ):
        with pytest.raises(DataError, match=match) as info:
            robustkit.load_dataset(str(path), **kwargs)
        assert f"{path}/" not in str(info.value) and str(path) in str(info.value)


def test_npz_arrays_of_no_or_the_wrong_dimensions_are_one_line_errors(tmp_path):
    """Found by review: an .npz whose x is a single value (a 0-d array) ended with a
    TypeError traceback (len() of unsized object); a 0-d y, or an x of one or two dimensions,
    must be refused as clearly."""
    images = np.zeros((4, 1, 8, 8), np.uint8)
    cases = {
        "x0d": (np.array(3, np.uint8), np.arange(4), r"'x' must be images.*got shape \(\)"),
        "x1d": (np.zeros(4, np.uint8), np.arange(4), r"'x' must be images.*got shape \(4,\)"),
        "x2d": (np.zeros((4, 64), np.uint8), np.arange(4), r"'x' must be images.*\(4, 64\)"),
        "y0d": (images, np.array(2), r"'y' must be one whole-number label per image.*shaped \(\)"),
    }
    for name, (x, y, match) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, x=x, y=y)
        with pytest.raises(DataError, match=match) as e:
            robustkit.load_dataset(str(path))
        assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_devices():
    assert robustkit.resolve_device("cpu") == torch.device("cpu")
    assert robustkit.resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(RobustkitError, match="unknown device 'gpu'"):
        robustkit.resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(RobustkitError, match=r"not available.*\(device='cpu'\)$"):
            robustkit.resolve_device("cuda:0")


def test_mps_is_named_and_taken_as_torch_names_it():
    """mps was accepted but no message or --help named it, and mps:0 (the device torch gives a
    tensor on Apple's GPU) was an unknown device."""
    with pytest.raises(RobustkitError, match="use auto, cpu, cuda, cuda:N or mps$"):
        robustkit.resolve_device("gpu")
    if torch.backends.mps.is_available():
        assert robustkit.resolve_device("mps:0").type == "mps"
    else:
        with pytest.raises(RobustkitError, match="device 'mps:0' is not available"):
            robustkit.resolve_device(torch.device("mps", 0))


def test_a_device_index_is_a_gpu_as_torch_takes_it():
    """device=0 is cuda:0 (it was taken as auto: the CPU where no GPU is); device=1 and other
    non-texts failed with an AttributeError traceback."""
    for index in (0, 1, np.int64(1)):
        if torch.cuda.device_count() > index:
            assert robustkit.resolve_device(index) == torch.device(f"cuda:{index}")
        else:
            with pytest.raises(RobustkitError, match=f"device 'cuda:{index}' is not available"):
                robustkit.resolve_device(index)
    for bad in (1.5, ["cpu"]):
        with pytest.raises(RobustkitError, match="unknown device .*use auto, cpu, cuda"):
            robustkit.resolve_device(bad)


def test_rewritten_npz_is_read_again(tmp_path):
    """The cache is keyed by the file (path, mtime, size), not by the name given."""
    path = tmp_path / "changing.npz"
    np.savez(path, x=np.zeros((4, 2, 2, 3), np.uint8), y=np.arange(4))
    assert robustkit.load_dataset(str(path))[1].tolist() == [0, 1, 2, 3]
    np.savez(path, x=np.zeros((3, 2, 2, 3), np.uint8), y=np.array([7, 8, 9]))
    assert robustkit.load_dataset(str(path))[1].tolist() == [7, 8, 9]
    assert dataset_size(str(path)) == 3
    # same size, new modification time
    np.savez(path, x=np.zeros((3, 2, 2, 3), np.uint8), y=np.array([1, 1, 1]))
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert robustkit.load_dataset(str(path))[1].tolist() == [1, 1, 1]
    # the same file by another spelling of its path is one cache entry
    other = tmp_path / "." / "changing.npz"
    assert robustkit.load_dataset(str(other))[1].tolist() == [1, 1, 1]


def test_named_set_follows_the_data_directory(monkeypatch, tmp_path):
    full = robustkit.load_dataset("mnist", n=5)[1]
    np.savez(tmp_path / "mnist_test.npz", x=np.zeros((2, 28, 28), np.uint8), y=np.array([3, 4]))
    monkeypatch.setenv("ROBUSTKIT_DATA", str(tmp_path))
    assert robustkit.load_dataset("mnist")[1].tolist() == [3, 4]
    monkeypatch.undo()
    assert torch.equal(robustkit.load_dataset("mnist", n=5)[1], full)


def test_too_few_correct_samples_say_how_many_the_data_has(tmp_path):
    """``correct_only`` runs: an offset past the end said "only 0 correctly classified samples
    from offset 20", and a data set with too few correct samples gave no count of samples nor
    a fix."""
    from robustkit.errors import InputError
    from robustkit.runner import first_correct_indices

    x = np.zeros((6, 1, 2, 2), np.uint8)
    y = np.array([0, 1, 0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    always_0 = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        always_0[1].weight.zero_()
        always_0[1].bias.copy_(torch.tensor([1.0, 0.0]))
    path = str(tmp_path / "d.npz")
    assert first_correct_indices(always_0, path, "test", 2, 1, "cpu") == [2, 4]
    with pytest.raises(DataError, match=r"offset=20 is past the end of .*d.npz \(6 samples\)"):
        first_correct_indices(always_0, path, "test", 2, 20, "cpu")
    with pytest.raises(InputError) as e:
        first_correct_indices(always_0, path, "test", 3, 1, "cpu")
    text = str(e.value)
    assert "2 of the 5 samples from offset 1" in text and "6 samples" in text
    assert "n <= 2" in text and "\n" not in text
    with torch.no_grad():
        always_0[1].bias.copy_(torch.tensor([0.0, 1.0]))  # always class 1 now
    x[:] = 0
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(6, np.int64))  # every label 0: none correct
    with pytest.raises(InputError, match="0 of the 6 samples .*the model for these images") as e:
        first_correct_indices(always_0, path, "test", 1, 0, "cpu")
    assert "n <= 0" not in str(e.value)


def test_a_failed_torchvision_download_names_its_cause(monkeypatch, tmp_path):
    """torchvision's MNIST reports a failed download over several lines, the first being
    "Error downloading train-images-idx3-ubyte.gz:": that line alone was the message's reason,
    without the cause (no network, say)."""
    import torchvision

    from robustkit import data

    def no_network(*args, **kwargs):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\nTried https://a.example/mnist/, "
            "got:\n<urlopen error [Errno -2] Name or service not known>\n"
        )

    monkeypatch.setattr(torchvision.datasets, "MNIST", no_network)
    monkeypatch.setattr(data, "_CACHE", {})
    monkeypatch.setenv("ROBUSTKIT_DATA", str(tmp_path))
    monkeypatch.delenv("ROBUSTKIT_OFFLINE", raising=False)
    with pytest.raises(DataError) as e:
        robustkit.load_dataset("mnist", n=5)
    text = str(e.value)
    assert "\n" not in text and "Name or service not known" in text
    assert "train-images-idx3-ubyte.gz" in text
