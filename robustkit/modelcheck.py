"""Checks that a model can classify the images and labels it is given, made before any work.

Every attack (and every run) first passes one or two images through the model
(:func:`check_classifier`): a model that fails on such images, changes them in place, or returns
something other than one row of finite class scores per image, gets a one-line
:class:`~robustkit.errors.InputError` instead of a traceback from deep inside an attack (and
every later prediction is held to :func:`check_scores`). The same pass notes the size of the
model's largest activation, which the label oracle uses to size its batches on a CPU
(:func:`largest_activation_bytes`).
"""

from __future__ import annotations

import re
import weakref

import torch

from .device import float_dtypes, model_device
from .errors import InputError, RobustkitError, first_line
from .naming import Naming
from .tables import counted

#: What a forward pass raises on images it cannot take (wrong shape, channels or dtype): shape
#: checks raise RuntimeError (most layers), ValueError (BatchNorm1d on 4-D input), TypeError,
#: AssertionError (a model's own asserts) or IndexError. KeyboardInterrupt and the like propagate.
_FORWARD_ERRORS = (RuntimeError, ValueError, TypeError, AssertionError, IndexError)
#: Floating-point types attacks refuse: an ε-ball and steps of 1/255 are not exact in them.
HALF_DTYPES = (torch.float16, torch.bfloat16)
_DTYPE_WORDS = re.compile(r"dtype|scalar type|double|float|half|bfloat", re.IGNORECASE)

#: Measured largest activation per (model, image shape): filled by the model check every
#: attack runs first (:func:`check_classifier`), so sizing the batches costs no extra forward pass.
_ACTIVATION_BYTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def probe_forward(model: torch.nn.Module, x1: torch.Tensor):
    """``model(x1)`` without gradients (``x1``: one image), noting on the way the bytes per image
    of the largest tensor any leaf module outputs (see :func:`robustkit.oracle.default_batch_size`;
    not for a model with TorchScript parts, which take no hooks)."""
    if not isinstance(model, torch.nn.Module) or any(
        isinstance(m, torch.jit.ScriptModule) for m in model.modules()
    ):
        with torch.no_grad():
            return model(x1)
    largest = [0]

    def hook(_module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            largest[0] = max(largest[0], output.numel() * output.element_size())

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            out = model(x1)
    finally:
        for h in handles:
            h.remove()
    if largest[0]:
        _ACTIVATION_BYTES.setdefault(model, {})[tuple(x1.shape[1:])] = largest[0] // x1.shape[0]
    return out


def check_scores(scores: object, n: int) -> torch.Tensor:
    """``scores``, a model's output for ``n`` images, or a one-line :class:`InputError`: it
    must be one row of finite floating-point class scores per image. (The label of a NaN row
    would be class 0, silently; a wrong number of rows would misalign every label.)"""
    scores = require_tensor(scores)
    if scores.dim() != 2:
        raise InputError(
            "the model must return one row of class scores per image (N×classes), got "
            f"Tensor {tuple(scores.shape)}"
        )
    if scores.shape[0] != n:
        raise InputError(
            f"the model returned {counted(scores.shape[0], 'row')} of scores for "
            f"{counted(n, 'image')}; it must "
            "return one row per image (check its reshapes: flatten with x.flatten(1))"
        )
    if scores.shape[1] < 2:  # its top class would always be 0: never fooled, never robust
        raise InputError(
            f"the model returns {scores.shape[1]} score{'' if scores.shape[1] == 1 else 's'} "
            "per image; a classifier must return "
            "one per class (for a binary classifier's single logit z, return "
            "torch.cat([torch.zeros_like(z), z], dim=1))"
        )
    if not scores.is_floating_point():
        raise InputError(
            f"the model returned {scores.dtype} scores; return the floating-point logits"
        )
    finite = torch.isfinite(scores).all(dim=1)
    if not finite.all():
        bad = (~finite).nonzero().flatten()
        raise InputError(
            f"the model returns NaN or infinite outputs for {bad.numel()} of {counted(n, 'image')} (the "
            f"first: image {int(bad[0])} of the batch), so it cannot classify them; fix the "
            "model (or its inputs) before attacking it"
        )
    return scores


def require_tensor(scores: object, who: str = "the model") -> torch.Tensor:
    """``scores``, what ``who`` returned, where it is a tensor; else a one-line
    :class:`InputError` that says what came back and what to return instead (aux heads in a
    tuple, a dict of outputs, an object with ``.logits``). No device sync."""
    if isinstance(scores, torch.Tensor):
        return scores
    what = type(scores).__name__
    if isinstance(getattr(scores, "logits", None), torch.Tensor):
        advice = "return its .logits from forward (e.g. a wrapper returning model(x).logits)"
    elif isinstance(scores, (tuple, list)):
        what = f"a {what} of {counted(len(scores), 'output')}"
        advice = "return only the logits from forward (e.g. a wrapper returning model(x)[0])"
    elif isinstance(scores, dict):
        keys = ", ".join(repr(k) for k in list(scores)[:4])
        what = f"a dict (keys {keys})"
        advice = "return only the logits from forward (e.g. a wrapper returning one entry)"
    else:
        advice = "return the logits, a tensor shaped N×classes"
    raise InputError(
        f"{who} must return one row of class scores per image (N×classes), got {what}; {advice}"
    )


def check_classifier(model: torch.nn.Module, x1: torch.Tensor) -> torch.Tensor:
    """Raise :class:`InputError` with a one-line reason unless ``model`` classifies images like
    ``x1`` (one or two images on the model's device): it runs on them without changing them
    and returns, on their device, one row of finite class scores per image
    (:func:`check_scores`); return those
    scores. (Its forward pass also sizes the label oracle's batches.)"""
    given = x1.clone()  # the model sees a copy: the caller's images stay as they are
    try:
        probe = probe_forward(model, given)
    except RobustkitError:
        raise  # already one line that says what is wrong
    except _FORWARD_ERRORS as exc:
        if not torch.equal(x1, given):
            raise _changes_its_input() from exc
        raise _cannot_classify(model, x1, exc) from exc
    if not torch.equal(x1, given):
        raise _changes_its_input()
    if isinstance(probe, torch.Tensor) and probe.device != x1.device:
        raise InputError(
            f"the model returns its scores on {probe.device} for images on {x1.device}; return "
            "them on the images' device (drop the .cpu() or .to() at the end of forward)"
        )
    return check_scores(probe, x1.shape[0])


def _changes_its_input() -> InputError:
    """The one-line error for a model that wrote into the images it was given."""
    return InputError(
        "the model changes the images it is given in place (e.g. x.sub_(mean)), so it would "
        "corrupt the clean images and every attack's examples; compute on a copy instead "
        "(x = x - mean)"
    )


def _cannot_classify(model, x1: torch.Tensor, exc: BaseException) -> InputError:
    """The one-line error for a model whose forward pass on ``x1`` raised ``exc``."""
    text = str(exc).strip()
    reason = first_line(exc)
    if text and not isinstance(exc, RuntimeError):
        reason = f"{type(exc).__name__}: {reason}"
    dtypes = float_dtypes(model) if isinstance(model, torch.nn.Module) else []
    if len(dtypes) > 1 and _DTYPE_WORDS.search(text):
        names = ", ".join(str(d) for d in dtypes)
        return InputError(
            f"the model cannot classify {x1.dtype} images: its weights mix dtypes ({names}; "
            f"{reason}); convert the whole model to one dtype, e.g. model.to({x1.dtype})"
        )
    if dtypes and dtypes[0] in HALF_DTYPES:
        return InputError(
            f"the model cannot classify {x1.dtype} images: its weights are {dtypes[0]}, and "
            "attacks run in float32 or float64; convert the model with model.float()"
        )
    if dtypes and dtypes[0] != x1.dtype:
        return InputError(
            f"the model cannot classify {x1.dtype} images: its weights are {dtypes[0]}; "
            f"convert the images (x.to({dtypes[0]})) or the model (model.to({x1.dtype}))"
        )
    return InputError(
        f"the model cannot classify images shaped {tuple(x1.shape[1:])} ({reason}); "
        "pass images of the size and channels the model expects"
    )


def check_input_shape(model, x: torch.Tensor, named: Naming | None = None) -> None:
    """Raise :class:`InputError` when ``model`` (or a zoo model inside it, under defenses) was
    trained on images of another shape than ``x``'s: MNIST's 1×28×28 images went through a
    CIFAR-10 model's 3-channel normalization by broadcasting, and were classified. ``named``:
    how the setting of the data set to pass is named (``--data cifar10`` on the command line,
    ``dataset='cifar10'`` in a RunConfig); None, the default, names none: ``evaluate`` and the
    attacks take images, not a data set (they said "(--data cifar10)")."""
    if not isinstance(model, torch.nn.Module):
        return
    theirs = "×".join(map(str, x.shape[1:]))
    # An ensemble's added members (after the defended model) are named as such where the
    # images may suit the defended model (the user's own, of no known shape, or a zoo model
    # of this shape): the members are what to change, not the images.
    for module in model.modules():
        members, names = getattr(module, "members", None), getattr(module, "names", None)
        if not isinstance(members, torch.nn.ModuleList) or not isinstance(names, list):
            continue
        if _zoo_input_shape(members[0]) not in (None, tuple(x.shape[1:])):
            break  # the defended model does not take these images either: said below
        for name, member in zip(names[1:], members[1:], strict=False):
            shape = _zoo_input_shape(member)
            if shape is not None and tuple(x.shape[1:]) != shape:
                raise InputError(
                    f"ensemble member {name} takes {'×'.join(map(str, shape))} images but the "
                    f"defended model's are {theirs}; pick members trained on the same images"
                )
    for module in model.modules():
        shape = getattr(module, "robustkit_input_shape", None)
        if shape is not None and tuple(x.shape[1:]) != tuple(shape):
            name = getattr(module, "robustkit_name", "the model")
            dataset = getattr(module, "robustkit_dataset", None)
            hint = f" of {dataset}" if dataset else ""
            if dataset and named is not None:
                hint += f" ({named.setting('dataset', dataset)})"
            raise InputError(
                f"{name} takes {'×'.join(map(str, shape))} images but these are {theirs}; "
                f"pass images{hint}"
            )


def _zoo_input_shape(model: torch.nn.Module) -> tuple[int, ...] | None:
    """The image shape a zoo model inside ``model`` was trained on, if any."""
    for module in model.modules():
        shape = getattr(module, "robustkit_input_shape", None)
        if shape is not None:
            return tuple(shape)
    return None


def check_labels(y: torch.Tensor, num_classes: int, what: str = "labels") -> None:
    """Raise :class:`InputError` unless every label of ``y`` names one of the model's classes."""
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise InputError(
            f"{what} must lie in 0..{num_classes - 1} (the model has {num_classes} classes), got "
            f"{int(y[bad][0])}; use labels of the data set the model was trained for"
        )


def largest_activation_bytes(model: torch.nn.Module, x: torch.Tensor) -> int | None:
    """Bytes per image of the largest tensor a leaf module of ``model`` outputs on images shaped
    like ``x`` (from the model check's forward pass, or one more forward pass of one image whose
    output is discarded), or None when it cannot be measured."""
    if not isinstance(model, torch.nn.Module):
        return None
    shape = tuple(x.shape[1:])
    known = _ACTIVATION_BYTES.get(model, {}).get(shape)
    if known is None:
        try:
            probe_forward(model, x[:1])
        except _FORWARD_ERRORS:
            return None
        known = _ACTIVATION_BYTES.get(model, {}).get(shape)
    return known


def check_training_mode(model) -> str | None:
    """Refuse a model whose BatchNorm layers are in training mode (:class:`InputError`): each
    prediction would depend on the rest of the batch, and every forward pass of the attack would
    overwrite the layers' running statistics. Return a warning's text when Dropout or
    stochastic-depth layers (torchvision's StochasticDepth, timm's DropPath) are in training mode
    at a rate above 0 (predictions at random, which may be meant), and so for other layers that
    draw at random in training mode (:func:`_random_in_training`: MultiheadAttention, RNN, LSTM,
    GRU with dropout, RReLU), else None. BatchNorm layers
    without running statistics (``track_running_stats=False``) are refused in eval mode too:
    they normalize by the batch there as well. InstanceNorm layers with running statistics
    are refused in training mode (every pass would change those statistics). A layer of a
    ``torch.jit.trace`` model (loaded from a file or not) runs in the mode it was traced in,
    whatever its flag says since: its graph's mode is judged (:func:`_traced_mode`)."""
    if not isinstance(model, torch.nn.Module):
        return None
    batchnorm, dropout = torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd
    norms = [m for m in model.modules() if _is_layer(m, batchnorm)]
    drops = [m for m in model.modules() if _is_layer(m, dropout)]
    # each norm layer's graph read once: (traced mode or None, traced without statistics)
    state = {id(m): _traced_norm_state(m) for m in norms}
    traced_norms = [m for m in norms if state[id(m)][0] is not None]
    if any(state[id(m)][0] and not state[id(m)][1] for m in traced_norms):
        raise InputError(
            "the model's BatchNorm layers were traced in training mode (torch.jit.trace keeps "
            "that mode: model.eval() afterwards does not change it): predictions would depend "
            "on the batch and every forward pass would change the model's running statistics; "
            "call model.eval() before torch.jit.trace and trace it again"
        )
    if any(m.training for m in norms if state[id(m)][0] is None):
        raise InputError(
            "the model's BatchNorm layers are in training mode: predictions would depend on the "
            "batch and every forward pass would change the model's running statistics; call "
            "model.eval() before attacking it"
        )
    # InstanceNorm does not mix images, but in training mode with running statistics it
    # normalizes otherwise than in eval mode and every pass rewrites those statistics
    instance = torch.nn.modules.instancenorm._InstanceNorm
    instances = [(m, _traced_norm_state(m)) for m in model.modules() if _is_layer(m, instance)]
    if any(
        (mode and not without_statistics)
        if mode is not None
        else m.training and getattr(m, "running_mean", None) is not None
        for m, (mode, without_statistics) in instances
    ):
        raise InputError(
            "the model's InstanceNorm layers are in training mode with running statistics "
            "(track_running_stats=True): they normalize otherwise than in eval mode and every "
            "forward pass would change the model's running statistics; call model.eval() before "
            "attacking it (before torch.jit.trace for a traced model)"
        )
    if any(state[id(m)][1] for m in traced_norms) or any(
        getattr(m, "running_mean", None) is None and getattr(m, "running_var", None) is None
        for m in norms
        if state[id(m)][0] is None
    ):
        raise InputError(
            "the model's BatchNorm layers keep no running statistics (track_running_stats="
            "False), so even in eval mode each prediction depends on the rest of the batch; "
            "give them running statistics (estimated on training data) before attacking it"
        )
    depths = [m for m in model.modules() if _is_stochastic_depth(m)]
    for word, layers in (("Dropout", drops), ("stochastic-depth", depths)):
        if any(_traced_randomness(m) for m in layers):
            return (
                f"the model's {word} layers were traced in training mode, so its predictions "
                "are random (model.eval() does not change a traced model); trace it after "
                "model.eval() unless that randomness is the defense"
            )
        if any(m.training and _drop_rate(m) != 0 for m in layers if _traced_randomness(m) is None):
            return (
                f"the model's {word} layers are in training mode, so its predictions are random; "
                "call model.eval() before attacking unless that randomness is the defense"
            )
    for module in model.modules():
        why = _random_in_training(module)
        if why is not None:
            return (
                f"the model's {_layer_name(module)} layers are in training mode ({why}), so its "
                "predictions are random; call model.eval() before attacking unless that "
                "randomness is the defense"
            )
    return None


def _layer_name(module: torch.nn.Module) -> str:
    """A layer's class name (a scripted layer's ``original_name``)."""
    return getattr(module, "original_name", None) or type(module).__name__


def _random_in_training(module: torch.nn.Module) -> str | None:
    """Why a layer other than Dropout and stochastic depth draws at random in its training mode
    (MultiheadAttention with dropout on its attention weights, an RNN, LSTM or GRU with dropout
    between its layers, RReLU's random slope), or None for one that does not: in eval mode, at
    rate 0, an RNN of one layer (it drops nothing), an RReLU with ``lower == upper``. A traced
    layer (its mode in its graph, whatever its flag says) is left out."""
    if not module.training:
        return None
    why = None
    if _is_layer(module, torch.nn.MultiheadAttention):
        rate = getattr(module, "dropout", 0)
        why = f"dropout={rate:g} on the attention weights" if _positive(rate) else None
    elif _is_layer(module, torch.nn.RNNBase):
        rate, layers = getattr(module, "dropout", 0), getattr(module, "num_layers", 1)
        why = f"dropout={rate:g} between its layers" if _positive(rate) and layers > 1 else None
    elif _is_layer(module, torch.nn.RReLU):
        lower, upper = getattr(module, "lower", 0), getattr(module, "upper", 0)
        why = f"a slope drawn from [{lower:g}, {upper:g}]" if lower != upper else None
    if why is not None and isinstance(module, torch.jit.ScriptModule):
        return why if _reads_training_flag(module) else None  # (traced: mode unknown here)
    return why


def _positive(rate: object) -> bool:
    """Whether a layer's dropout rate is a number above 0."""
    return isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0


def _reads_training_flag(module: torch.jit.ScriptModule) -> bool:
    """Whether a scripted layer reads its ``training`` flag in one of its methods, in nested
    blocks too (an LSTM's in ``forward__0``: it has no ``forward``); a traced one's graph has its
    mode as a constant instead."""
    try:
        graphs = [module._c._get_method(name).graph for name in module._c._method_names()]
    except (RuntimeError, AttributeError):
        return False
    return any(
        node.s("name") == "training"
        for graph in graphs
        for node in graph.findAllNodes("prim::GetAttr")
    )


#: Stochastic-depth layers (drop a residual branch at random in training mode): torchvision's
#: (ConvNeXt, Swin, EfficientNet) and timm's, known by class name (neither is imported here).
_STOCHASTIC_DEPTH = frozenset({"StochasticDepth", "DropPath"})


def _is_stochastic_depth(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a stochastic-depth layer (of a subclass too; scripted or traced)."""
    names = {cls.__name__ for cls in type(module).__mro__}
    names.add(getattr(module, "original_name", ""))
    return bool(names & _STOCHASTIC_DEPTH)


def _drop_rate(module: torch.nn.Module) -> object:
    """A Dropout or stochastic-depth layer's rate (``p``, timm's ``drop_prob``), where it has
    one: at 0 the layer is deterministic in training mode too."""
    return getattr(module, "p", getattr(module, "drop_prob", None))


def _traced_randomness(module: torch.nn.Module) -> bool | None:
    """Whether a traced Dropout or stochastic-depth layer draws at random (traced in training
    mode at a rate above 0), or None for a layer that is not traced (its flag says)."""
    node = _traced_call(module)
    if node is not None:
        rate = list(node.inputs())[1]
        fixed = rate.node().kind() == "prim::Constant"
        return bool(_traced_mode(module)) and not (fixed and rate.toIValue() == 0)
    if not isinstance(module, torch.jit.ScriptModule) or not _is_stochastic_depth(module):
        return None
    try:
        nodes = list(module.graph.nodes())
    except (RuntimeError, AttributeError):
        return None
    if any(n.kind() == "prim::GetAttr" and n.s("name") == "training" for n in nodes):
        return None  # scripted: it reads its flag
    return any(n.kind().startswith("aten::bernoulli") for n in nodes)  # traced: drawn or not


#: The calls a traced BatchNorm, InstanceNorm or Dropout layer's graph makes, with the position
#: of the argument that holds the mode it was traced in.
_MODE_ARGUMENT = {
    "aten::batch_norm": 5,
    "aten::instance_norm": 5,  # (use_input_stats: training, or no running statistics)
    # Dropout's kinds, each also in place (inplace=True): dropout_ and so on
    **{
        f"aten::{kind}{inplace}": 2
        for kind in ("dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout")
        for inplace in ("", "_")
    },
}


def _traced_call(module: torch.nn.Module):
    """The BatchNorm, InstanceNorm or Dropout call in the graph of a traced layer, whose mode
    argument is a constant (fixed when it was traced); None for any other module (a scripted
    layer's graph calls a function that reads the layer's ``training`` flag)."""
    if not isinstance(module, torch.jit.ScriptModule):
        return None
    try:
        nodes = list(module.graph.nodes())
    except (RuntimeError, AttributeError):  # (a scripted module without a forward method)
        return None
    for node in nodes:
        position = _MODE_ARGUMENT.get(node.kind())
        if position is not None:
            mode = list(node.inputs())[position]
            return node if mode.node().kind() == "prim::Constant" else None
    return None


def _traced_mode(module: torch.nn.Module) -> bool | None:
    """Whether a traced layer runs in training mode (its graph's constant), or None where the
    layer is not traced (its ``training`` flag says its mode)."""
    node = _traced_call(module)
    if node is None:
        return None
    return bool(list(node.inputs())[_MODE_ARGUMENT[node.kind()]].toIValue())


def _traced_norm_state(module: torch.nn.Module) -> tuple[bool | None, bool]:
    """A BatchNorm or InstanceNorm layer's traced mode (:func:`_traced_mode`: None where it is
    not traced) and whether, traced, it normalizes without running statistics (traced with
    ``track_running_stats=False``: its graph passes None for them), from one read of its
    graph."""
    node = _traced_call(module)
    if node is None:
        return None, False
    mode = bool(list(node.inputs())[_MODE_ARGUMENT[node.kind()]].toIValue())
    if node.kind() not in ("aten::batch_norm", "aten::instance_norm"):
        return mode, False
    running_mean = list(node.inputs())[3]
    return mode, running_mean.node().kind() == "prim::Constant" and running_mean.toIValue() is None


def _is_layer(module: torch.nn.Module, kind: type) -> bool:
    """Whether ``module`` is a layer of ``kind`` (or of a subclass), scripted, traced or not:
    a layer of a torch.jit.script or torch.jit.trace model is a ScriptModule that keeps its
    class's name as ``original_name`` (a scripted one its ``training`` flag, buffers and
    attributes too, which the checks read; a traced one's mode is in its graph)."""
    if isinstance(module, kind):
        return True
    if not isinstance(module, torch.jit.ScriptModule):
        return False
    name = getattr(module, "original_name", None)
    kinds, names = [kind], set()
    while kinds:
        cls = kinds.pop()
        names.add(cls.__name__)
        kinds.extend(cls.__subclasses__())
    return name in names


def _buffer_versions(model) -> dict[str, tuple[int, int]]:
    """Each buffer of ``model`` by name: which tensor it is and how many times it was written
    in place (its version counter); a forward pass that changes either changed the model's
    state. (No copy of any buffer is made; a buffer made under torch.inference_mode keeps no
    version and is left out.)"""
    if not isinstance(model, torch.nn.Module):
        return {}
    versions = {}
    for name, buffer in model.named_buffers():
        try:
            versions[name] = (id(buffer), buffer._version)
        except RuntimeError:  # (an inference tensor)
            continue
    return versions


def check_model_on(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None = None,
    named: Naming | None = None,
) -> tuple[str | None, torch.Tensor]:
    """Every check before work starts, on the first two images of ``x`` (moved to the model's
    device):
    :func:`check_training_mode`, :func:`check_classifier` and :func:`check_labels` for ``y``
    (and ``target``, the target labels of a targeted attack). Raises :class:`InputError`;
    returns the text of a warning (or None), for the caller to warn with: random layers in
    training mode (Dropout, stochastic depth), or buffers the check's forward pass changed
    (state that every pass of an attack would change again); and the model's scores for
    those images. ``named``: as for :func:`check_input_shape`."""
    warning = check_training_mode(model)
    check_input_shape(model, x, named)
    before = _buffer_versions(model)
    # two images where there are: a model that mixes images (a wrong reshape, a pooling over
    # the batch) returns the wrong number of rows for them
    scores = check_classifier(model, x[:2].to(model_device(model)))
    changed = [
        name for name, version in _buffer_versions(model).items() if before.get(name) != version
    ]
    if changed:
        state = (
            f"the model changes its buffer {changed[0]!r} in a forward pass (a layer left in "
            "training mode, e.g. spectral_norm's power iteration, or state of its own), so "
            "every pass of the attack changes the model and its predictions depend on the "
            "passes before; call model.eval() before attacking unless that state is the defense"
        )
        warning = state if warning is None else f"{warning}; and {state}"
    check_labels(y, scores.shape[1])
    if target is not None:
        check_labels(target, scores.shape[1], "target labels")
    return warning, scores
