"""The model zoo: registered classifiers by name, user models from files, torchvision's ImageNet
architectures.

Importing this package registers the 15 CIFAR-10/MNIST checkpoints (:mod:`.catalog`) and the
``torchvision/<arch>`` names (:mod:`.torchvision_models`) in :data:`robustkit.registry.MODELS`;
it loads no weights and does not import torchvision. :func:`load_model` returns an ``nn.Module`` in
eval mode that takes NCHW inputs in [0, 1] (normalization is inside the model).
"""

from __future__ import annotations

from . import catalog, torchvision_models  # noqa: F401  (catalog registers the 15 checkpoints)
from .loading import (
    is_user_file,
    load_model,
    model_info,
    safe_load,
    state_sha256,
    weights_sha256,
)

TORCHVISION_PREFIX = torchvision_models.PREFIX
torchvision_models.register_all()

__all__ = [
    "TORCHVISION_PREFIX",
    "is_user_file",
    "load_model",
    "model_info",
    "safe_load",
    "state_sha256",
    "weights_sha256",
]
