"""The one registry mechanism: decorator registration, glob listing, suggestions, entry points."""

from __future__ import annotations

import sys
import types

import pytest
import torch

import robustkit
from robustkit.errors import RobustkitError, UnknownNameError
from robustkit.registry import ATTACKS, DEFENSES, MODELS, Registry


class FakeEntryPoint:
    """An importlib entry point whose load() returns ``obj`` (raises it, if an exception), after
    calling ``on_load`` (a plug-in module registering its objects on import)."""

    def __init__(self, name, obj, on_load=None):
        self.name, self.obj, self.value, self.on_load = name, obj, f"fake:{name}", on_load

    def load(self):
        if self.on_load is not None:
            self.on_load()
        if isinstance(self.obj, Exception):
            raise self.obj
        return self.obj


def make_registry() -> Registry:
    reg: Registry = Registry("widget")

    @reg.register("cifar10/alpha", colour="red")
    def alpha():
        return "a"

    reg.add("cifar10/beta", lambda: "b", colour="blue")
    reg.add("mnist/alpha", lambda: "c")
    return reg


def test_register_get_and_metadata():
    reg = make_registry()
    assert reg.get("cifar10/alpha")() == "a"
    assert reg.entry("cifar10/beta").metadata == {"colour": "blue"}
    assert "mnist/alpha" in reg and "nope" not in reg


def test_glob_listing_is_sorted_and_filtered():
    reg = make_registry()
    assert reg.names() == ["cifar10/alpha", "cifar10/beta", "mnist/alpha"]
    assert reg.names("cifar10/*") == ["cifar10/alpha", "cifar10/beta"]
    assert reg.names("*/alpha") == ["cifar10/alpha", "mnist/alpha"]
    assert [e.name for e in reg.entries("mnist/*")] == ["mnist/alpha"]


def test_unknown_name_suggests_closest():
    reg = make_registry()
    with pytest.raises(UnknownNameError) as info:
        reg.get("cifar10/alpah")
    message = str(info.value)
    assert "unknown widget 'cifar10/alpah'" in message and "'cifar10/alpha'" in message
    assert "\n" not in message
    with pytest.raises(UnknownNameError, match="did you mean") as info:
        reg.get("alpha")
    assert "'cifar10/alpha'" in str(info.value) and "'mnist/alpha'" in str(info.value)
    with pytest.raises(UnknownNameError, match="`robustkit widgets` lists them"):
        reg.get("zzzzzzzz")


def test_duplicate_name_is_refused():
    reg = make_registry()
    with pytest.raises(RobustkitError, match="already registered"):
        reg.add("cifar10/alpha", object())


def test_entry_points_plug_in(monkeypatch):
    reg: Registry = Registry("gadget", group="robustkit.test-gadgets")

    def plugin_factory():
        return "plugged"

    module = types.ModuleType("fake_plugin_module")

    def registers_itself():
        reg.add("self-registered", lambda: "module")

    eps = [
        FakeEntryPoint("plugged", plugin_factory),
        FakeEntryPoint("mod", module, on_load=registers_itself),
    ]
    monkeypatch.setattr("robustkit.registry.entry_points", lambda group: eps)
    assert reg.names() == ["plugged", "self-registered"]
    assert reg.get("plugged")() == "plugged"

    broken: Registry = Registry("gadget", group="x")
    monkeypatch.setattr(
        "robustkit.registry.entry_points",
        lambda group: [FakeEntryPoint("bad", ImportError("boom"))],
    )
    with pytest.raises(RobustkitError, match="cannot load gadget plug-in 'bad'"):
        broken.names()


def test_a_plugin_that_takes_a_registered_name_is_refused(monkeypatch):
    """A plug-in object under the name of a built-in one was dropped without a word: the name
    ran the built-in object, which the user took for the plug-in's."""
    reg: Registry = Registry("gadget", group="robustkit.test-gadgets")
    reg.add("pgd", lambda: "built-in")

    class FakeEP:
        name, value = "pgd", "theirs:pgd"

        def load(self):
            return lambda: "plug-in"

    monkeypatch.setattr("robustkit.registry.entry_points", lambda group: [FakeEP()])
    with pytest.raises(RobustkitError, match="plug-in 'pgd' .theirs:pgd. takes the name of") as e:
        reg.get("pgd")
    assert "\n" not in str(e.value)


def test_builtin_registries_share_the_mechanism():
    for reg in (MODELS, ATTACKS, DEFENSES):
        assert isinstance(reg, Registry)
    assert {"input-noise", "bit-depth", "ensemble"} <= set(DEFENSES.names())


def test_constructor_parameters_follow_only_forwarded_kwargs():
    """A base's parameter counts only where the constructor passes **kwargs on: APGD fixes
    ``targeted`` itself and FGSM its steps, so neither is a parameter a run may set or records."""
    from robustkit.registry import constructor_parameters

    class Base:
        def __init__(self, a=1, fixed=False):
            self.a, self.fixed = a, fixed

    class Forwards(Base):
        def __init__(self, b=2, **kwargs):
            super().__init__(**kwargs)

    class Fixes(Base):
        def __init__(self, c=3):
            super().__init__(fixed=True)

    assert constructor_parameters(Forwards) == ["b", "a", "fixed"]
    assert constructor_parameters(Fixes) == ["c"]
    assert "targeted" not in constructor_parameters(ATTACKS.get("apgd-t"))
    assert "steps" not in constructor_parameters(ATTACKS.get("fgsm"))
    cgba_h = constructor_parameters(ATTACKS.get("cgba-h"))
    assert {"targeted", "sigma", "max_queries", "batch_size"} <= set(cgba_h)


def test_names_match_case_insensitively_when_unambiguous():
    reg = make_registry()
    assert reg.get("CIFAR10/Alpha")() == "a" and reg.entry("MNIST/ALPHA").name == "mnist/alpha"
    assert "Cifar10/Beta" in reg
    assert ATTACKS.entry("PGD").name == "pgd"
    with pytest.raises(UnknownNameError, match="did you mean 'cifar10/alpha'"):
        reg.get("CIFAR10/ALPAH")
    with pytest.raises(UnknownNameError, match="did you mean 'apgd-ce'"):
        ATTACKS.get("APGD_CE")
    reg.add("Gamma", lambda: "G")
    reg.add("gamma", lambda: "g")
    assert reg.get("Gamma")() == "G" and reg.get("gamma")() == "g"  # exact names first
    with pytest.raises(UnknownNameError, match="did you mean 'Gamma', 'gamma'") as info:
        reg.get("GAMMA")  # two names differ from it only in case: which one is not guessed
    assert "GAMMA" not in reg and "\n" not in str(info.value)


def test_a_name_that_is_not_a_string_is_a_one_line_error():
    """get_attack(None) raised AttributeError ('NoneType' object has no attribute 'casefold')."""
    for call, kind in (
        (lambda: robustkit.get_attack(None), "attack"),
        (lambda: robustkit.get_defense(5), "defense"),
        (lambda: robustkit.load_model(None), "model"),
    ):
        with pytest.raises(robustkit.RobustkitError, match=f"{kind} name"):
            call()


def test_a_broken_plugin_is_refused_on_every_lookup_and_the_others_still_load(monkeypatch):
    """The first lookup raised the broken plug-in's error; every later one (a notebook's retry,
    the store that reads on past it) got a registry without the plug-ins listed after it."""
    reg: Registry = Registry("gadget", group="robustkit.test-gadgets")

    eps = [
        FakeEntryPoint("bad", ImportError("boom\nits second line")),
        FakeEntryPoint("good", lambda: "good"),
    ]
    monkeypatch.setattr("robustkit.registry.entry_points", lambda group: eps)
    for _ in range(2):
        with pytest.raises(RobustkitError, match="cannot load gadget plug-in 'bad'") as info:
            reg.names()
        assert "\n" not in str(info.value)
    assert "good" in reg._entries  # (loaded before the error was raised)


def test_a_registered_class_is_known_by_its_registered_name(monkeypatch):
    """An attack or defense class that did not set ``name`` itself ran under the name it
    inherited: ``""`` (a run's attack labelled ``:steps=2``, its defense ``:k=2``) or, for a
    subclass of PGD, ``pgd`` (its results stored as PGD's)."""
    from robustkit.attack import Attack
    from robustkit.defense import Defense
    from robustkit.specs import build_attack, build_defense

    attacks, defenses = Registry("attack"), Registry("defense")
    monkeypatch.setattr("robustkit.specs.ATTACKS", attacks)
    monkeypatch.setattr("robustkit.specs.DEFENSES", defenses)

    @attacks.register("mine")
    class Mine(Attack):
        def _attack(self, ctx, x, y, target):
            return x

    @attacks.register("my-pgd")
    class MyPGD(ATTACKS.get("pgd")):
        pass

    @defenses.register("my-defense")
    class Mine2(Defense):
        def __init__(self, k: int = 2):
            self.k = k

    assert Mine().name == "mine" and build_attack("MINE").name == "mine"
    assert MyPGD(eps=0.1).name == "my-pgd" and ATTACKS.get("pgd").name == "pgd"
    assert build_defense("my-defense:k=3").name == "my-defense"


def test_a_name_or_pattern_that_is_not_text_is_a_clear_error():
    """robustkit.list_attacks(5) and ATTACKS.register(5) ended in AttributeError tracebacks
    ('int' object has no attribute 'casefold' / 'strip')."""
    reg: Registry = Registry("gadget")
    with pytest.raises(RobustkitError, match="gadget name pattern is text"):
        reg.names(5)
    with pytest.raises(RobustkitError, match="attack name pattern is text"):
        robustkit.list_attacks(5)
    with pytest.raises(ValueError, match="invalid gadget name 5"):
        reg.register(5)(lambda: None)


def test_a_name_of_a_builtin_is_refused_before_the_builtins_load(monkeypatch, tmp_path):
    """A user's registration under a built-in name, made before the first lookup, was taken;
    the first lookup then imported the built-ins, whose own registration of that name failed
    ("already registered") halfway through: every later listing lacked the built-ins after it
    (`robustkit.list_models('cifar10/*')` gave the user's model alone)."""
    holder = types.ModuleType("rk_test_widget_holder")
    holder.REG = Registry("widget", builtin="rk_test_builtin_widgets")
    monkeypatch.setitem(sys.modules, "rk_test_widget_holder", holder)
    (tmp_path / "rk_test_builtin_widgets.py").write_text(
        "import rk_test_widget_holder as h\n"
        "h.REG.add('w/first', 'built-in 1')\n"
        "h.REG.add('w/second', 'built-in 2')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rk_test_builtin_widgets", raising=False)
    with pytest.raises(RobustkitError, match="widget 'w/first' is already registered"):
        holder.REG.add("w/first", "the user's")
    holder.REG.add("w/mine", "the user's")
    assert holder.REG.names() == ["w/first", "w/mine", "w/second"]
    assert holder.REG.get("w/first") == "built-in 1"
    sys.modules.pop("rk_test_builtin_widgets", None)


def test_a_notebook_cell_run_again_registers_its_model_again():
    """A cell that defines and registers a model, run a second time (after an edit), was
    refused: "model 'test/cell' is already registered; pick another name", until a restart of
    the kernel. The same definition (module and qualified name) replaces its entry; another
    object under a taken name is still refused."""
    namespace: dict = {"__name__": "__main__", "MODELS": MODELS, "torch": torch}
    cell = (
        "@MODELS.register('test/cell', dataset='none', version={v})\n"
        "def build(weights=None):\n"
        "    return torch.nn.Linear(4, {v})\n"
    )
    try:
        exec(cell.format(v=2), namespace)
        exec(cell.format(v=3), namespace)  # edited and run again
        assert MODELS.entry("test/cell").metadata["version"] == 3
        assert robustkit.load_model("test/cell", device="cpu").out_features == 3
        with pytest.raises(RobustkitError, match="already registered"):
            MODELS.add("test/cell", lambda weights=None: torch.nn.Linear(4, 2))
    finally:
        MODELS._entries.pop("test/cell", None)


def test_a_first_lookup_stopped_while_the_builtins_load_loads_them_at_the_next(
    monkeypatch, tmp_path
):
    """A first lookup stopped while the built-ins loaded (a Ctrl-C while PyTorch loads, in a
    notebook; an import error fixed meanwhile) left the registry marked as loaded with the
    built-ins registered so far: the same cell run again said "unknown attack 'pgd'", and
    `list_attacks()` lacked it, until the kernel restarted. The next lookup loads them again."""
    holder = types.ModuleType("rk_test_widget_holder")
    holder.REG = Registry("widget", builtin="rk_test_builtin_widgets")
    monkeypatch.setitem(sys.modules, "rk_test_widget_holder", holder)
    (tmp_path / "rk_test_builtin_widgets.py").write_text(
        "import os\n"
        "import rk_test_widget_holder as h\n"
        "class First: ...\n"
        "class Second: ...\n"
        "h.REG.add('w/first', First)\n"
        "if os.environ.get('RK_TEST_STOP'):\n"
        "    raise KeyboardInterrupt\n"
        "h.REG.add('w/second', Second)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rk_test_builtin_widgets", raising=False)
    monkeypatch.setenv("RK_TEST_STOP", "1")
    with pytest.raises(KeyboardInterrupt):
        holder.REG.names()
    monkeypatch.delenv("RK_TEST_STOP")
    assert holder.REG.names() == ["w/first", "w/second"]
    assert holder.REG.get("w/second").__name__ == "Second"
    sys.modules.pop("rk_test_builtin_widgets", None)
