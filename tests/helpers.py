"""Small synthetic models and a minimal attack for tests of the core (no real data needed), a
stand-in for a file without read permission, and ways to make a run fail at a given shard."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import nn

import robustkit.weights
from robustkit.attack import Attack


class Linear(nn.Module):
    """A linear classifier on flattened images: its exact adversarial geometry is known."""

    def __init__(self, in_shape=(3, 8, 8), classes=10, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        d = int(torch.tensor(in_shape).prod())
        self.fc = nn.Linear(d, classes)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(classes, d, generator=gen) / d**0.5)
            self.fc.bias.copy_(torch.randn(classes, generator=gen) * 0.1)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Softmaxed(nn.Module):
    """Returns probabilities instead of logits (a mistake the tools must warn about)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).softmax(dim=1)


class HalfScores(nn.Module):
    """Float32 images in, scores rounded to a half-precision type out (as a model ending in
    autocast or .half() returns them); ``scale`` multiplies the logits (a confident model)."""

    def __init__(self, dtype, scale=1.0):
        super().__init__()
        self.model, self.dtype, self.scale = Linear(), dtype, scale

    def forward(self, x):
        return (self.scale * self.model(x)).to(self.dtype)


class RandomSign(Attack):
    """One random ±ε step (L∞) or a random direction of norm ε (L2): enough to test the base."""

    name = "random-sign"

    def __init__(self, norm="linf", eps=8 / 255, targeted=False, seed=0, overshoot=1.0):
        super().__init__(norm=norm, eps=eps, targeted=targeted, seed=seed)
        self.overshoot = overshoot

    def _attack(self, ctx, x, y, target):
        noise = torch.randn(x.shape, generator=ctx.generator, device=x.device)
        ctx.logits(x)  # one counted forward per sample
        if self.norm == "linf":
            return x + self.overshoot * self.eps * noise.sign()
        noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        return x + self.overshoot * self.eps * noise


def unreadable(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make ``path`` unreadable to robustkit.weights, as ``chmod 000`` does for a user other
    than root (the tests may run as root, whom permissions do not stop)."""
    real_open = open

    def refusing_open(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(robustkit.weights, "open", refusing_open, raising=False)


def interrupt() -> None:
    """A Ctrl-C (for :func:`at_shard`)."""
    raise KeyboardInterrupt


def at_shard(monkeypatch: pytest.MonkeyPatch, index: int, action: Callable[[], None]) -> Callable:
    """Make :func:`robustkit.evaluation.evaluate_shard` call ``action`` before it computes
    shard ``index`` (raise to stop the run there, or switch the model's behaviour from there on).
    Returns the real function, to put back with ``monkeypatch.setattr``."""
    import robustkit.evaluation as evaluation

    real = evaluation.evaluate_shard

    def patched(*args):
        if args[6] == index:  # the shard's index
            action()
        return real(*args)

    monkeypatch.setattr(evaluation, "evaluate_shard", patched)
    return real


def switchable_model_file(path: Path, variable: str, switched: str) -> Path:
    """Write a ``file.py`` whose ``net()`` is a seeded linear MNIST classifier that, while the
    environment variable ``variable`` is set, returns the expression ``switched`` of its
    outputs ``out`` instead (``out * float('nan')``; a ``raise`` statement's text raises)."""
    then = (
        f"            {switched}\n"
        if switched.startswith("raise")
        else f"            return {switched}\n"
    )
    path.write_text(
        "import os\nimport torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        torch.manual_seed(0)\n"
        "        self.fc = torch.nn.Linear(784, 10)\n"
        "    def forward(self, x):\n"
        "        out = self.fc(x.flatten(1))\n"
        f"        if os.environ.get({variable!r}):\n" + then + "        return out\n"
        "def net():\n"
        "    return Net()\n"
    )
    return path


def unpickling_checkpoint(directory: Path) -> tuple[Path, Path]:
    """Write ``net.py`` (``build()``: a linear MNIST classifier) and ``unsafe.pt``, a checkpoint
    of its weights that also holds an ``argparse.Namespace``, which ``weights_only=True``
    refuses (it needs full unpickling); return both paths."""
    import argparse

    net = directory / "net.py"
    net.write_text(
        "import torch\n\ndef build():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))\n"
    )
    state = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).state_dict()
    unsafe = directory / "unsafe.pt"
    torch.save({"state_dict": state, "extra": argparse.Namespace(a=1)}, unsafe)
    return net, unsafe


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run the block on one intra-op thread, then give the threads back."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def full_stdout(monkeypatch):
    """click.echo to stdout fails as on a full disk (stderr is still written)."""
    import errno

    import click

    real = click.echo

    def echo(message=None, file=None, nl=True, err=False, color=None):
        if not err and file is None:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(message, file=file, nl=nl, err=err, color=color)

    monkeypatch.setattr(click, "echo", echo)
