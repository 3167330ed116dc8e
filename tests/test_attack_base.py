"""The attack base class: input checks, skipping, projection, re-prediction, counting, seeds."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
import torch

import robustkit
from robustkit.attack import AttackResult, RobustkitWarning
from robustkit.errors import InputError
from robustkit.specs import build_attack
from robustkit.threat import flat_norm

from .helpers import HalfScores, Linear, RandomSign, Softmaxed


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(32, 3, 8, 8, generator=gen)
    model = Linear()
    y = model(x).argmax(1)
    y[:4] = (y[:4] + 1) % 10  # four samples the model gets wrong
    return model, x, y


def test_result_fields_and_invariants(data):
    model, x, y = data
    res = RandomSign(eps=0.3, overshoot=5.0)(model, x, y)
    assert isinstance(res, AttackResult)
    assert res.x_adv.shape == x.shape and res.x_adv.device.type == "cpu"
    # projected: inside the ball and the box even though the attack overshot
    assert (res.norms <= 0.3 + 1e-6).all() and res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    # success is decided by re-prediction
    assert torch.equal(res.success, model(res.x_adv).argmax(1) != y)
    # misclassified samples are not attacked: x unchanged, zero queries, counted as success
    assert not res.attacked[:4].any() and res.attacked[4:].all()
    assert torch.equal(res.x_adv[:4], x[:4]) and (res.queries[:4] == 0).all()
    assert (res.queries[4:] == 1).all() and (res.gradients == 0).all()
    assert res.clean_accuracy == pytest.approx(28 / 32)
    assert res.robust_accuracy == pytest.approx(float((~res.success).float().mean()))
    assert torch.allclose(res.l2, flat_norm(res.x_adv - x, "l2"))
    frame = res.to_frame()
    assert len(frame) == 32 and {"success", "queries", "norm"} <= set(frame.columns)
    assert frame["robust"].tolist() == res.robust.tolist()  # not 1 - success (targeted, ε)


def test_seeded_and_repeatable(data):
    model, x, y = data
    a, b = RandomSign(seed=3)(model, x, y), RandomSign(seed=3)(model, x, y)
    c = RandomSign(seed=4)(model, x, y)
    assert torch.equal(a.x_adv, b.x_adv) and not torch.equal(a.x_adv, c.x_adv)


def test_params_are_recorded():
    atk = RandomSign(norm="l2", eps=0.5, seed=7, overshoot=2.0)
    assert atk.params == {"norm": "l2", "eps": 0.5, "targeted": False, "seed": 7, "overshoot": 2.0}
    assert atk.with_seed(9).seed == 9 and atk.seed == 7


def test_concat(data):
    model, x, y = data
    atk = RandomSign()
    whole = AttackResult.concat([atk(model, x[:10], y[:10]), atk(model, x[10:], y[10:])])
    assert whole.n == 32 and whole.x_adv.shape == x.shape


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x, y: (x.numpy(), y), "must be a torch.Tensor"),
        (lambda x, y: ((x * 255).to(torch.uint8), y), "floating-point"),
        (lambda x, y: (x[0], y), "N×C×H×W"),
        (lambda x, y: (x * 2, y), r"must lie in \[0, 1\]"),
        (lambda x, y: (x.clone().index_fill_(0, torch.tensor([0]), float("nan")), y), "NaN"),
        (lambda x, y: (x, y[:-1]), "one label per image"),
        (lambda x, y: (x, y.float()), "integer"),
        (lambda x, y: (x, y > 4), "integer"),  # a mask is not labels 0/1
        (lambda x, y: (x, [str(int(v)) for v in y]), "must be integer class labels"),
        (lambda x, y: (x.half(), y), "float32 or float64"),
        (lambda x, y: (x.bfloat16(), y), "float32 or float64"),
    ],
)
def test_bad_inputs(data, make, message):
    model, x, y = data
    bx, by = make(x, y)
    with pytest.raises(InputError, match=message):
        RandomSign()(model, bx, by)


def test_bad_parameters_and_targets(data):
    model, x, y = data
    with pytest.raises(InputError, match="eps must be a positive"):
        RandomSign(eps=0)
    with pytest.raises(InputError, match="eps must be a positive"):
        RandomSign(eps="big")
    with pytest.raises(InputError, match="unknown norm"):
        RandomSign(norm="l7")
    with pytest.raises(InputError, match="needs target labels"):
        RandomSign(targeted=True)(model, x, y)
    with pytest.raises(InputError, match="target equals the true label"):
        RandomSign(targeted=True)(model, x, y, y)
    with pytest.raises(InputError, match="untargeted attack"):
        RandomSign()(model, x, y, (y + 1) % 10)
    with pytest.raises(InputError, match="must lie in 0..9"):
        RandomSign(targeted=True)(model, x, y, y + 20)


def test_probability_outputs_warn(data):
    model, x, y = data
    with pytest.warns(RobustkitWarning, match="probabilities"):
        RandomSign()(Softmaxed(model), x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RandomSign()(model, x, y)


def test_a_model_in_training_mode(data):
    """BatchNorm in training mode is refused (batch-dependent predictions, and the attack would
    rewrite its running statistics); Dropout in training mode warns (random predictions may be
    the defense); either in eval mode is quiet."""
    model, x, y = data
    bn = torch.nn.Sequential(model, torch.nn.BatchNorm1d(10))  # a fresh module trains
    stats = bn[1].running_mean.clone()
    with pytest.raises(InputError, match=r"BatchNorm layers are in training mode.*model\.eval\(\)"):
        RandomSign()(bn, x, y)
    assert torch.equal(bn[1].running_mean, stats)
    with pytest.raises(InputError, match="BatchNorm layers are in training mode"):
        robustkit.evaluate(bn, [RandomSign()], x, y)
    assert torch.equal(bn[1].running_mean, stats)  # not even the clean pass ran
    dropout = torch.nn.Sequential(model, torch.nn.Dropout(0.1))
    with pytest.warns(RobustkitWarning, match=r"Dropout layers are in training mode"):
        RandomSign()(dropout, x, y)
    for wrapped in (bn, dropout):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RandomSign()(wrapped.eval(), x, y)


def test_batchnorm_without_running_statistics_is_refused_in_eval_mode(data):
    """BatchNorm made with track_running_stats=False normalizes by the batch's statistics in
    eval mode too: labels depended on which images shared a pass (2 of 16 changed alone), and
    CGBA reported 13 of 16 examples "not adversarial on the fresh re-check (a randomized
    model ...)"; FGSM's numbers were silently those of the batch."""
    model, x, y = data
    bn = torch.nn.Sequential(model, torch.nn.BatchNorm1d(10, track_running_stats=False)).eval()
    for attack in (robustkit.get_attack("fgsm"), robustkit.get_attack("cgba")):
        with pytest.raises(InputError, match=r"BatchNorm layers keep no running statistics"):
            attack(bn, x, y)
    with pytest.raises(InputError, match="track_running_stats=False"):
        robustkit.evaluate(bn, None, x, y)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")
def test_stochastic_depth_in_training_mode_warns_and_dropout_of_rate_zero_does_not(data):
    """torchvision's StochasticDepth (in ConvNeXt, Swin, EfficientNet) drops residual branches
    at random in training mode: a ConvNeXt not put in eval mode (no BatchNorm, no Dropout)
    gave random predictions without a word. Dropout of rate 0 in training mode is
    deterministic, yet was warned of as random predictions."""
    from torchvision.ops import StochasticDepth

    model, x, y = data

    def net(layer, mode="train"):
        return getattr(torch.nn.Sequential(model, layer), mode)()

    def quiet(m):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RandomSign()(m, x, y)

    depth = StochasticDepth(0.5, "row")
    for drops in (net(depth), torch.jit.script(net(depth))):
        with pytest.warns(RobustkitWarning, match="stochastic-depth layers are in training mode"):
            RandomSign()(drops, x, y)
        quiet(drops.eval())
    traced = torch.jit.trace(net(depth), x[:4], check_trace=False).eval()
    with pytest.warns(RobustkitWarning, match="stochastic-depth layers were traced in training"):
        RandomSign()(traced, x, y)
    quiet(torch.jit.trace(net(depth, "eval"), x[:4], check_trace=False).train())
    quiet(net(StochasticDepth(0.0, "row")))
    for m in (net(torch.nn.Dropout(0.0)), torch.jit.trace(net(torch.nn.Dropout(0.0)), x[:4])):
        quiet(m)


class _Sequenced(torch.nn.Module):
    """The model's logits as a sequence of one token through ``layer`` (attention or an RNN)."""

    def __init__(self, model, layer):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, x):
        z = self.model(x).unsqueeze(1)
        attention = isinstance(self.layer, torch.nn.MultiheadAttention)
        return self.layer(z, z, z)[0][:, -1] if attention else self.layer(z)[0][:, -1]


@pytest.mark.filterwarnings("ignore:dropout option adds dropout:UserWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_other_random_layers_in_training_mode_warn(data):
    """MultiheadAttention with dropout, RNN/LSTM/GRU with dropout between layers and RReLU draw at
    random in training mode as Dropout does: a model left in training mode gave random
    predictions without a word. They warn, naming the layer; at rate 0 (an RNN of one layer
    drops nothing, an RReLU with lower == upper has a fixed slope) or in eval mode, quiet."""
    model, x, y = data

    def attention(p):
        return _Sequenced(model, torch.nn.MultiheadAttention(10, 2, dropout=p, batch_first=True))

    def recurrent(kind, p, layers=2):
        return _Sequenced(model, kind(10, 10, num_layers=layers, dropout=p, batch_first=True))

    for random, name in (
        (attention(0.5), "MultiheadAttention"),
        (recurrent(torch.nn.LSTM, 0.5), "LSTM"),
        (recurrent(torch.nn.GRU, 0.5), "GRU"),
        (recurrent(torch.nn.RNN, 0.5), "RNN"),
        (torch.nn.Sequential(model, torch.nn.RReLU()), "RReLU"),
        (torch.jit.script(torch.nn.Sequential(model, torch.nn.RReLU())), "RReLU"),
    ):
        with pytest.warns(
            RobustkitWarning, match=rf"{name} layers are in training mode .*eval\(\)"
        ):
            RandomSign()(random, x, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RandomSign()(random.eval(), x, y)
    for quiet in (
        attention(0.0),
        recurrent(torch.nn.LSTM, 0.0),
        recurrent(torch.nn.LSTM, 0.5, layers=1),
        torch.nn.Sequential(model, torch.nn.RReLU(0.2, 0.2)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RandomSign()(quiet.train(), x, y)


class _RunningMean(torch.nn.Module):
    """A layer of the user's own that keeps a running mean of its inputs on every call."""

    def __init__(self):
        super().__init__()
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, x):
        self.seen.mul_(0.9).add_(0.1 * x.mean())
        return x


def test_a_model_that_changes_its_buffers_on_a_forward_pass_warns(data):
    """spectral_norm left in training mode runs a power iteration on every call, rewriting
    its u and v buffers (so do layers of the user's own that keep running statistics): every
    pass of an attack changed the model and its predictions drifted, without a word. It warns
    (a stateful model may be the defense); in eval mode spectral_norm is quiet."""
    from torch.nn.utils.parametrizations import spectral_norm

    model, x, y = data
    normed = torch.nn.Sequential(torch.nn.Flatten(), spectral_norm(torch.nn.Linear(192, 10)))
    for stateful in (normed, torch.nn.Sequential(_RunningMean(), model)):
        with pytest.warns(RobustkitWarning, match=r"changes its buffer .* forward pass.*eval\(\)"):
            RandomSign()(stateful, x, normed(x).argmax(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RandomSign()(normed.eval(), x, y)


def test_instance_norm_keeping_running_statistics_in_training_mode_is_refused(data):
    """InstanceNorm made with track_running_stats=True, left in training mode, normalizes by
    each image's own statistics (the eval-mode model uses the running ones) and every forward
    pass rewrote the running statistics: an attack changed the user's model without a word.
    Without running statistics, or in eval mode, it is attacked (it does not mix images)."""
    model, x, y = data
    tracking = torch.nn.Sequential(torch.nn.InstanceNorm2d(3, track_running_stats=True), model)
    stats = tracking[0].running_mean.clone()
    for attack in (RandomSign(), robustkit.get_attack("cgba", max_queries=20)):
        with pytest.raises(InputError, match=r"InstanceNorm layers are in training mode.*eval\(\)"):
            attack(tracking, x, y)
    assert torch.equal(tracking[0].running_mean, stats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.jit.trace's deprecation)
        traced = torch.jit.trace(tracking, x[:2], check_trace=False).eval()
    with pytest.raises(InputError, match="InstanceNorm layers are in training mode"):
        RandomSign()(traced, x, y)  # traced in training mode: .eval() does not change it
    for quiet in (tracking.eval(), torch.nn.Sequential(torch.nn.InstanceNorm2d(3), model)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RandomSign()(quiet, x, y)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_the_training_mode_checks_see_scripted_layers(data):
    """torch.jit.script turns each layer into a RecursiveScriptModule, which isinstance checks
    miss: a scripted model with BatchNorm in training mode, or without running statistics, was
    attacked (its labels depending on the batch) and scripted Dropout in training mode passed
    quietly. The scripted layer's original_name, training and running_mean are readable."""
    model, x, y = data
    train_bn = torch.jit.script(torch.nn.Sequential(model, torch.nn.BatchNorm1d(10)))
    with pytest.raises(InputError, match="BatchNorm layers are in training mode"):
        RandomSign()(train_bn, x, y)
    no_stats = torch.nn.BatchNorm1d(10, track_running_stats=False)
    scripted = torch.jit.script(torch.nn.Sequential(model, no_stats).eval())
    with pytest.raises(InputError, match="BatchNorm layers keep no running statistics"):
        RandomSign()(scripted, x, y)
    dropout = torch.jit.script(torch.nn.Sequential(model, torch.nn.Dropout(0.1)))
    with pytest.warns(RobustkitWarning, match="Dropout layers are in training mode"):
        RandomSign()(dropout, x, y)
    for quiet in (train_bn, dropout):  # in eval mode, with running statistics: attacked
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RandomSign()(quiet.eval(), x, y)


def _reloaded(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """``module`` saved with torch.jit.save and loaded back (as a user's model file is)."""
    import io

    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")
@pytest.mark.parametrize("saved", [False, True])
def test_the_training_mode_checks_see_traced_layers(data, saved):
    """torch.jit.trace fixes each layer's mode in its graph: model.eval() afterwards flips the
    flag, not what runs. A model traced in training mode was attacked after .eval() with its
    BatchNorm still normalizing by the batch (and rewriting its running statistics), traced
    Dropout stayed live without a word, traced BatchNorm without running statistics passed;
    loaded from a file, a model traced in eval mode was refused once .train() flipped its flags.
    """
    model, x, y = data

    def traced(*layers, mode="train"):
        net = getattr(torch.nn.Sequential(model, *layers), mode)()
        out = torch.jit.trace(net, x[:4], check_trace=False)
        return _reloaded(out) if saved else out

    train_bn = traced(torch.nn.BatchNorm1d(10)).eval()
    stats = getattr(train_bn, "1").running_mean.clone()
    with pytest.raises(InputError, match=r"BatchNorm layers were traced in training mode.*trace"):
        RandomSign()(train_bn, x, y)
    assert torch.equal(getattr(train_bn, "1").running_mean, stats)
    no_stats = traced(torch.nn.BatchNorm1d(10, track_running_stats=False), mode="eval")
    with pytest.raises(InputError, match="BatchNorm layers keep no running statistics"):
        RandomSign()(no_stats, x, y)
    for layer in (torch.nn.Dropout(0.1), torch.nn.Dropout(0.1, inplace=True)):
        dropout = traced(layer).eval()  # (in place: another op in the graph, dropout_)
        with pytest.warns(RobustkitWarning, match="Dropout layers were traced in training mode"):
            RandomSign()(dropout, x, y)
    # traced in eval mode: attacked quietly, whatever its flags say since
    for layer in (torch.nn.BatchNorm1d(10), torch.nn.Dropout(0.1)):
        quiet = traced(layer, mode="eval").train()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            RandomSign()(quiet, x, y)


def test_inputs_of_another_dtype_or_with_a_graph(data):
    model, x, y = data
    with pytest.raises(InputError, match=r"cannot classify torch.float64 images.*x\.to\(torch"):
        RandomSign()(model, x.double(), y)
    # x from a graph: the attack neither fails on it nor hands a graph back
    leaf = x.clone().requires_grad_()
    res = RandomSign()(model, leaf * 1.0, y)
    assert not res.x_adv.requires_grad and leaf.grad is None


def test_non_contiguous_and_channels_last(data):
    model, x, y = data
    ref = RandomSign()(model, x, y)
    cl = RandomSign()(model, x.to(memory_format=torch.channels_last), y)
    nc = RandomSign()(model, x.transpose(2, 3).contiguous().transpose(2, 3), y)
    assert torch.equal(ref.x_adv, cl.x_adv) and torch.equal(ref.x_adv, nc.x_adv)


class RowCounter(torch.nn.Module):
    """Counts the rows of every forward pass (and which ones needed gradients)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.passes: list[tuple[int, bool]] = []

    def forward(self, x):
        self.passes.append((x.shape[0], x.requires_grad))
        return self.model(x)


@pytest.mark.parametrize("spec", ["fgsm", "pgd:random_start=False,steps=3"])
def test_an_attack_starting_at_the_clean_images_shares_the_clean_pass(data, spec):
    """FGSM (and PGD without a random start) take their first gradient at the clean images:
    the pass that gives it also gives the clean labels, so FGSM costs one gradient pass and
    the re-check, not a separate clean pass on top; counts and results are unchanged."""
    model, x, y = data
    counted = RowCounter(model)
    name, _, opts = spec.partition(":")
    kwargs = {
        k: v == "True" if v in ("True", "False") else int(v)
        for k, v in (o.split("=") for o in opts.split(",") if o)
    }
    res = robustkit.get_attack(name, eps=0.03, **kwargs)(counted, x, y)
    full = [p for p in counted.passes if p[0] > 2]  # the two-image model check aside
    assert full[0] == (32, True)  # clean labels and first gradient: one pass over all
    assert not any(n == 32 and not grad for n, grad in full[:-1])  # no separate clean pass
    assert full[-1] == (32, False)  # the re-check of every answer
    if name == "fgsm":
        assert len(full) == 2
    # one query and one gradient per attacked sample and step, none for the others
    assert (res.queries[:4] == 0).all() and (res.gradients[:4] == 0).all()
    assert (res.gradients[4:] >= 1).all() and torch.equal(res.queries, res.gradients)
    # the same answer as the attack computing that gradient itself on the attacked samples
    plain = robustkit.get_attack(name, eps=0.03, **kwargs)
    plain.clean_gradient_loss = lambda y, target: None
    ref = plain(model, x, y)
    assert torch.allclose(res.x_adv, ref.x_adv, atol=1e-6)
    assert torch.equal(res.success, ref.success) and torch.equal(res.queries, ref.queries)


def test_a_randomized_model_keeps_its_voted_clean_pass(data):
    """A model that votes (a randomized defense) gets its clean labels by majority vote, so the
    one-draw gradient pass is not used for them."""
    model, x, y = data
    counted = RowCounter(model)
    counted.votes = 3
    robustkit.get_attack("fgsm", eps=0.03)(counted, x, y)
    full = [p for p in counted.passes if p[0] > 2]
    assert full[:3] == [(32, False)] * 3  # three voting draws of the clean images


def test_given_clean_labels_spare_the_clean_pass(data):
    """With ``clean_pred`` (an evaluation of several attacks takes the clean labels once) the
    attack makes no clean pass of its own: its first full pass is its first gradient. The
    probability warning still comes, from the model check's images."""
    model, x, y = data
    counted = RowCounter(model)
    clean_pred = model(x).argmax(1)
    res = robustkit.get_attack("pgd", eps=0.03, steps=2)(counted, x, y, clean_pred=clean_pred)
    full = [p for p in counted.passes if p[0] > 2]
    assert full[0] == (28, True) and full[-1] == (32, False)  # attacked samples, re-check
    assert torch.equal(res.clean_pred, clean_pred) and not res.attacked[:4].any()
    with pytest.warns(RobustkitWarning, match="probabilities"):
        robustkit.get_attack("pgd", eps=0.03, steps=1)(
            Softmaxed(model), x, y, clean_pred=clean_pred
        )


class _NaNOn(torch.nn.Module):
    """A linear model whose scores are NaN for flat images (per-image standardisation)."""

    def __init__(self):
        super().__init__()
        self.net = Linear()

    def forward(self, x):
        flat = x.flatten(1)
        z = (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True)
        return self.net(z.view_as(x))


class _LinearWith(torch.nn.Module):
    """A user's model with a habit of its own: :class:`Linear` with its input passed through
    ``before`` and its scores through ``after``."""

    def __init__(self, before=None, after=None):
        super().__init__()
        self.net = Linear()
        self.before, self.after = before or (lambda x: x), after or (lambda s: s)

    def forward(self, x):
        return self.after(self.net(self.before(x)))


def _subtracts_in_place():
    return _LinearWith(before=lambda x: x.sub_(0.5))


def _clamps_in_place():
    """Writes into its input, leaving images in [0, 1] as they were (a safety clamp_)."""
    return _LinearWith(before=lambda x: x.clamp_(0.0, 1.0))


def _through_numpy():
    """Preprocesses in NumPy (as a JPEG-compression defense through PIL does)."""
    return _LinearWith(before=lambda x: torch.from_numpy(np.round(x.numpy() * 15) / 15).to(x.dtype))


def _squeezes():
    """``.squeeze()`` on its scores: one image's come back as a vector."""
    return _LinearWith(after=lambda scores: scores.squeeze())


class _RowsPerBatch(torch.nn.Module):
    """One row for the whole batch (a pooling over the batch dimension)."""

    def __init__(self):
        super().__init__()
        self.net = Linear()

    def forward(self, x):
        return self.net(x).mean(0, keepdim=True)


class _TwoRowsPerImage(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(96, 10)

    def forward(self, x):
        return self.fc(x.reshape(-1, 96))


@pytest.mark.parametrize("spec", ["fgsm", "pgd:steps=2", "cgba:max_queries=30"])
def test_nan_scores_on_any_image_are_an_error(data, spec):
    """NaN scores only on the first image were refused; on any other, argmax made them class
    0: a sample of class 0 counted as correct and robust."""
    model, x, y = data
    x = x.clone()
    x[5] = 0.5  # flat: NaN scores
    name, _, rest = spec.partition(":")
    params = dict(kv.split("=") for kv in rest.split(",")) if rest else {}
    attack = robustkit.get_attack(name, **{k: int(v) for k, v in params.items()})
    with pytest.raises(InputError, match=r"NaN or infinite outputs for 1 of 32 images.*image 5"):
        attack(_NaNOn().eval(), x, y)
    with pytest.raises(InputError, match="NaN or infinite outputs"):
        robustkit.evaluate(_NaNOn().eval(), [], x, y)


@pytest.mark.parametrize("spec", ["fgsm", "cgba"])
def test_a_model_that_changes_its_input_is_refused_before_it_does(data, spec):
    """It overwrote the caller's images: a label-only attack then returned examples outside
    [0, 1] with wrong distances, a white-box one a raw autograd error."""
    _, x, y = data
    before = x.clone()
    with pytest.raises(InputError, match="changes the images it is given in place"):
        robustkit.get_attack(spec)(_subtracts_in_place().eval(), x, y)
    assert torch.equal(x, before)


@pytest.mark.parametrize("spec", ["fgsm", "pgd:steps=2", "apgd-ce:steps=3"])
def test_a_model_writing_into_its_input_without_changing_it_is_one_line_for_gradients(data, spec):
    """x.clamp_(0, 1) leaves images in [0, 1] as they were, so the model check let it pass,
    and every gradient attack ended in autograd's raw RuntimeError ('a leaf Variable that
    requires grad is being used in an in-place operation')."""
    _, x, y = data
    attack = build_attack(spec)
    with pytest.raises(InputError, match=r"writes into the images it is given.*x.clamp\(") as info:
        attack(_clamps_in_place().eval(), x, y)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("spec", ["fgsm", "pgd:steps=2"])
def test_a_model_that_goes_through_numpy_is_one_line_for_gradient_attacks(data, spec):
    """A model preprocessing its input in NumPy runs without gradients (the model check and
    label-only attacks take it), but every gradient attack ended in torch's raw RuntimeError
    "Can't call numpy() on Tensor that requires grad"; it now says what a model without a
    gradient path is told: use a label-only attack, or BPDA."""
    _, x, y = data
    attack = build_attack(spec)
    with pytest.raises(InputError, match=r"through NumPy.*label-only attack.*BPDA") as info:
        attack(_through_numpy().eval(), x, y)
    assert "\n" not in str(info.value)
    robustkit.get_attack("cgba", max_queries=20)(_through_numpy().eval(), x, y)


@pytest.mark.parametrize("model", [_RowsPerBatch, _TwoRowsPerImage])
def test_a_model_with_a_row_count_other_than_the_images_is_refused(data, model):
    _, x, y = data
    for attack in (robustkit.get_attack("pgd", steps=1), robustkit.get_attack("cgba")):
        with pytest.raises(InputError, match=r"returned (1 row|\d+ rows) of scores for 2 images"):
            attack(model().eval(), x, y)
    with pytest.raises(InputError, match="rows? of scores"):
        robustkit.evaluate(model().eval(), [robustkit.get_attack("fgsm")], x, y)


class _OneScore(torch.nn.Module):
    """One score per image ([N, 1]: a binary classifier's single logit)."""

    def __init__(self):
        super().__init__()
        self.net = Linear()

    def forward(self, x):
        return self.net(x)[:, :1]


def test_a_model_with_one_score_per_image_is_refused(data):
    # Its top class is always 0: with labels 0 every attack reported 100% robust accuracy
    # (nothing can change an argmax over one column); with other labels the error blamed them.
    _, x, _ = data
    y = torch.zeros(len(x), dtype=torch.long)
    for attack in (robustkit.get_attack("pgd", steps=1), robustkit.get_attack("cgba")):
        with pytest.raises(InputError, match=r"returns 1 score per image.*one per class") as info:
            attack(_OneScore().eval(), x, y)
        assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="returns 1 score per image"):
        robustkit.evaluate(_OneScore().eval(), None, x, y)


class _Outputs(torch.nn.Module):
    """Linear's logits inside what real models return: aux heads, a dict, a HuggingFace-style
    object with ``.logits``."""

    def __init__(self, kind):
        super().__init__()
        self.net, self.kind = Linear(), kind

    def forward(self, x):
        logits = self.net(x)
        if self.kind == "tuple":
            return logits, logits.detach()
        if self.kind == "1-tuple":  # ("a tuple of 1 outputs")
            return (logits,)
        if self.kind == "dict":
            return {"logits": logits}
        return types.SimpleNamespace(logits=logits)


@pytest.mark.parametrize(
    "kind, advice",
    [
        ("tuple", r"got a tuple of 2 outputs.*return only the logits"),
        ("1-tuple", r"got a tuple of 1 output;.*return only the logits"),
        ("dict", r"got a dict.*return only the logits"),
        ("object", r"got SimpleNamespace.*return its \.logits"),
    ],
)
def test_a_model_returning_more_than_logits_is_told_what_to_return(data, kind, advice):
    _, x, y = data
    for name in ("fgsm", "cgba"):
        with pytest.raises(InputError, match=advice) as info:
            robustkit.get_attack(name)(_Outputs(kind).eval(), x, y)
        assert "()" not in str(info.value)


@pytest.mark.parametrize(
    "name, params",
    [("pgd", {}), ("pgd", {"random_start": False, "steps": 2}), ("apgd-ce", {}), ("apgd-t", {})],
)
def test_a_model_that_squeezes_one_image_s_scores_is_a_clear_error_in_gradient_attacks(
    name, params
):
    # The model check sees two images; a batch where one sample is left to attack (the other
    # misclassified, or fooled by early stopping, or by an earlier restart) reached the loss
    # with one image's scores as a vector: a raw "size mismatch" RuntimeError.
    model = _squeezes().eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    y[0] = (y[0] + 1) % 10
    with pytest.raises(InputError, match=r"one row of class scores per image.*got Tensor \(10,\)"):
        robustkit.get_attack(name, **params)(model, x, y)


@pytest.mark.parametrize("name", ["fgsm", "pgd", "apgd-ce"])
def test_gradient_attacks_take_inference_mode_images_and_run_under_inference_mode(data, name):
    # Images made under torch.inference_mode() failed FGSM with a raw "Setting requires_grad=True
    # on inference tensor" RuntimeError (PGD's random start happened to copy them); an attack
    # called under it blamed the model: "no gradient path to its input ... use a label-only
    # attack". (no_grad was always fine.)
    model, x, y = data
    expected = robustkit.get_attack(name)(model, x, y).x_adv
    with torch.inference_mode():
        made_there = x.clone()
    assert torch.equal(robustkit.get_attack(name)(model, made_there, y).x_adv, expected)
    with torch.inference_mode():
        res = robustkit.get_attack(name)(model, x, y)
    assert torch.equal(res.x_adv, expected)


def test_integer_scores_are_refused(data):
    model, x, y = data

    class Counts(torch.nn.Module):
        def forward(self, x):
            return (model(x) * 100).long()

    with pytest.raises(InputError, match="torch.int64 scores; return the floating-point"):
        robustkit.get_attack("fgsm")(Counts(), x, y)


def test_a_half_precision_model_is_told_to_convert_itself(data):
    model, x, y = data
    half = Linear().bfloat16()
    with pytest.raises(InputError, match=r"weights are torch.bfloat16.*model.float\(\)"):
        robustkit.get_attack("fgsm")(half, x, y)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gradient_attacks_warn_of_half_precision_scores(dtype):
    """A model returning float16/bfloat16 scores for float32 images was attacked by the
    gradient attacks without a word (label-only ones warned): the loss of rounded scores
    saturates and, in float16, its gradients underflow to zero where the model is confident.
    On 64 images of a linear model with logits ×100, float16 scores gave 58% of the samples
    an exactly zero cross-entropy gradient and PGD's robust accuracy rose from 45% to 58%."""
    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = HalfScores(dtype, scale=100.0)
    y = model(x).argmax(1)
    for name in ("fgsm", "pgd", "apgd-ce"):
        steps = {} if name == "fgsm" else {"steps": 3}
        attack = robustkit.get_attack(name, eps=4 / 255, **steps)
        with pytest.warns(RobustkitWarning, match=f"returns {dtype} scores") as record:
            attack(model, x, y)
        assert len([w for w in record if "scores" in str(w.message)]) == 1
    with warnings.catch_warnings():  # float32 scores: quiet
        warnings.simplefilter("error")
        robustkit.get_attack("pgd", steps=3)(HalfScores(torch.float32), x, y)


class HalfWeights(torch.nn.Module):
    """Half-precision weights behind a float32 interface: images cast in, scores cast out."""

    def __init__(self, dtype):
        super().__init__()
        self.model, self.dtype = Linear().to(dtype), dtype

    def forward(self, x):
        return (100.0 * self.model(x.to(self.dtype))).float()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_attacks_warn_of_a_model_computing_in_half_precision_behind_float32_scores(dtype):
    """A model whose weights are float16/bfloat16, casting float32 images in and its scores
    back to float32, was attacked without a word: its gradients underflow inside the model
    as they do on half scores (PGD's robust accuracy on 64 images of a float16 Linear with
    logits ×100: 53%, against 36% for the same model in float32)."""
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = HalfWeights(dtype)
    y = model(x).argmax(1)
    for attack in (
        robustkit.get_attack("pgd", steps=2),
        robustkit.get_attack("cgba", max_queries=20),
    ):
        with pytest.warns(RobustkitWarning, match=f"computes in {dtype} .its weights") as record:
            attack(model, x, y)
        assert len([w for w in record if "computes in" in str(w.message)]) == 1
    table = Linear().eval()  # float32 weights beside a half-precision buffer: quiet
    table.register_buffer("lookup", torch.zeros(4, dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        robustkit.get_attack("pgd", steps=2)(table, x, table(x).argmax(1))


def test_evaluate_checks_its_inputs_with_or_without_attacks(data):
    """evaluate() with no attack took images in [0, 255] (clean accuracy 30%), and uint8 or
    3-D images got raw errors from inside the model; a fractional seed was taken as its
    floor, and targets for untargeted attacks were dropped."""
    model, x, y = data
    fgsm = robustkit.get_attack("fgsm")
    for attacks in ([], None, [fgsm]):
        with pytest.raises(InputError, match=r"must lie in \[0, 1\]"):
            robustkit.evaluate(model, attacks, x * 255, y)
        with pytest.raises(InputError, match="floating-point"):
            robustkit.evaluate(model, attacks, (x * 255).to(torch.uint8), y)
        with pytest.raises(InputError, match="N×C×H×W"):
            robustkit.evaluate(model, attacks, x[0], y)
        with pytest.raises(InputError, match="integer"):
            robustkit.evaluate(model, attacks, x, y > 4)
    with pytest.raises(InputError, match="seed must be a whole number"):
        robustkit.evaluate(model, [fgsm], x, y, seed=1.9)
    with pytest.raises(InputError, match="no attack is targeted"):
        robustkit.evaluate(model, [fgsm], x, y, target=(y + 1) % 10)
    with pytest.raises(InputError, match="target equals the true label"):
        targeted = robustkit.get_attack("pgd", targeted=True, steps=1)
        robustkit.evaluate(model, [targeted], x, y, target=y)
    assert robustkit.evaluate(model, [], x, y).clean_accuracy == pytest.approx(28 / 32)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("abc", "clean_pred must be integer class labels"),
        ([[1.5] * 32], "clean_pred must be integer class labels"),
        (torch.ones(32, dtype=torch.bool), "clean_pred must be integer class labels"),
        (torch.full((32,), 10), r"outside the model's 10 classes \(10..10\)"),
        (torch.full((32,), -1), "outside the model's 10 classes"),
    ],
)
def test_given_clean_labels_are_checked(data, bad, message):
    """clean_pred was only counted: text raised a raw ValueError, 1.5 was taken as 1, and a
    label the model does not have marked every sample misclassified, silently."""
    model, x, y = data
    with pytest.raises(InputError, match=message) as info:
        robustkit.get_attack("fgsm", eps=0.03)(model, x, y, clean_pred=bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["false", "no", 0, None])
def test_targeted_given_as_other_than_true_or_false_is_refused(value):
    """``bool("false")`` is True: an attack of one's own (or one made from its class, or a
    ThreatModel) given ``targeted="false"`` was silently targeted, and the call then asked
    for target labels; only get_attack refused it. Every other switch is checked so."""
    from robustkit.attacks.pgd import PGD
    from robustkit.threat import ThreatModel

    for make in (
        lambda: RandomSign(targeted=value),
        lambda: PGD(targeted=value),
        lambda: ThreatModel(targeted=value),
    ):
        with pytest.raises(InputError, match=f"^targeted must be true or false, got {value!r}$"):
            make()
    assert RandomSign(targeted=np.bool_(True)).targeted is True
    assert ThreatModel(targeted=False).describe() == "linf 8/255"
