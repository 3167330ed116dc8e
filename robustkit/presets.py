"""Named sets of evaluation runs that build a whole leaderboard (``robustkit leaderboard run``).

- ``quick``: every zoo model, FGSM and PGD-10 at the data set's usual L∞ ε on the first 100 test
  images, and CGBA with 300 queries on the first 10 correctly classified images: about 30 s on 2
  CPU cores, the README's main job.
- ``full``: what ``leaderboards/`` publishes: CIFAR-10 at L∞ 8/255, L∞ 2/255 and L2 0.5, MNIST at
  L∞ 0.3, each with FGSM, PGD and the ``auto`` ensemble on the first 1,000 test images, and CGBA with
  1,000 queries on the first 100 correctly classified images per model.
"""

from __future__ import annotations

from .errors import InputError
from .registry import MODELS
from .runner import RunConfig

PRESETS = ("quick", "full")


def zoo_models(pattern: str = "*") -> list[str]:
    """The CIFAR-10 and MNIST zoo models matching ``pattern`` (not the torchvision listings)."""
    names = [n for n in MODELS.names(pattern) if n.startswith(("cifar10/", "mnist/"))]
    return names


def preset_runs(
    name: str, pattern: str = "*", device: str = "auto", seed: int = 0
) -> list[RunConfig]:
    """The run configurations of a preset, cheapest first within each group."""
    if not isinstance(name, str) or name.casefold() not in PRESETS:
        # (a bare ValueError before; names match in any case, as elsewhere in robustkit)
        raise InputError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    name = name.casefold()
    models = zoo_models(pattern)
    common = {"device": device, "seed": seed}
    runs: list[RunConfig] = []
    if name == "quick":
        for m in models:
            runs.append(
                RunConfig(
                    model=m, n=100, attacks=("fgsm", "pgd"), norm="linf", batch_size=100, **common
                )
            )
        for m in models:
            runs.append(
                RunConfig(
                    model=m,
                    n=10,
                    correct_only=True,
                    attacks=("cgba",),
                    norm="l2",
                    queries=300,
                    batch_size=10,
                    sanity=False,
                    **common,
                )
            )
        return runs
    if name == "full":
        cifar = [m for m in models if m.startswith("cifar10/")]
        mnist = [m for m in models if m.startswith("mnist/")]
        for m in mnist:
            runs.append(
                RunConfig(
                    model=m,
                    n=1000,
                    norm="linf",
                    eps=0.3,
                    batch_size=500,
                    attacks=("fgsm", "pgd:steps=40,step_size=0.01", "auto"),
                    **common,
                )
            )
        for norm, eps in (("linf", "8/255"), ("linf", "2/255"), ("l2", "0.5")):
            for m in cifar:
                runs.append(
                    RunConfig(
                        model=m,
                        n=1000,
                        norm=norm,
                        eps=eps,
                        batch_size=500,
                        attacks=("fgsm", "pgd:steps=20", "auto"),
                        **common,
                    )
                )
        for m in mnist + cifar:
            runs.append(
                RunConfig(
                    model=m,
                    n=100,
                    correct_only=True,
                    attacks=("cgba",),
                    norm="l2",
                    queries=1000,
                    batch_size=100,
                    sanity=False,
                    **common,
                )
            )
        return runs
    raise AssertionError(f"preset {name!r} has no runs")  # (every name in PRESETS has)
