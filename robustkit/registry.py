"""One registry mechanism for models, attacks and defenses.

A :class:`Registry` maps names to objects (factories or classes) with metadata. Objects register
with a decorator; names are listed with glob patterns; an unknown name raises
:class:`~robustkit.errors.UnknownNameError` that suggests the closest names. Third-party packages
plug in through an entry-point group (``robustkit.models``, ``robustkit.attacks``,
``robustkit.defenses``): each entry point names a module or object; loading it registers it (a
module registers its own objects on import; any other object is registered under the entry point's
name).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Generic, TypeVar

from .errors import RobustkitError, UnknownNameError, first_line

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with its name and metadata."""

    name: str
    obj: T
    metadata: dict[str, Any] = field(default_factory=dict)


def constructor_parameters(cls: type) -> list[str]:
    """Keyword parameters a class's constructor accepts: its own, then, where it passes
    ``**kwargs`` on, those of the next constructor up its bases (and so on).

    Attacks and defenses keep each parameter under an attribute of the same name, so this list
    is both what a specification may set and what a run records. A base's parameter that the
    constructor fixes itself (APGD is never targeted) is not one of them.
    """
    return list(constructor_signature(cls))


def constructor_signature(cls: type) -> dict[str, inspect.Parameter]:
    """The parameters of :func:`constructor_parameters`, by name, with their defaults."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        forwards = False
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.kind == p.VAR_KEYWORD:
                forwards = True
            elif p.name != "self" and p.kind != p.VAR_POSITIONAL and p.name not in params:
                params[p.name] = p
        if not forwards:
            break
    return params


def _redefined(old: object, new: object) -> bool:
    """Whether ``new`` is ``old``'s definition run again: a function or class of the same
    module and qualified name (lambdas are all ``<lambda>``: never the same definition)."""
    key = [(getattr(o, "__module__", None), getattr(o, "__qualname__", None)) for o in (old, new)]
    module, qualname = key[0]
    return (
        key[0] == key[1]
        and isinstance(module, str)
        and isinstance(qualname, str)
        and "<lambda>" not in qualname
    )


def alias_package(name: str, package: str) -> None:
    """Make the module being imported as ``name`` be the installed ``package`` (and each of its
    imported submodules ``name.x`` be ``package.x``).

    The source directories attacks/ and defenses/ install as ``robustkit.attacks`` and
    ``robustkit.defenses``; in the repository root (a notebook started there) ``import attacks``
    finds the directory first. Run as a second package, it would define every class again and
    register every attack again ("already registered"); as the installed package under a second
    name, ``from attacks.pgd import PGD`` is robustkit's PGD.
    """
    installed = importlib.import_module(package)
    sys.modules[name] = installed
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith(package + "."):
            sys.modules[name + module_name[len(package) :]] = module


class Registry(Generic[T]):
    """A named collection of objects of one kind.

    ``kind`` names the kind in messages ("model", "attack", "defense"); ``group`` is the
    entry-point group third-party packages use; ``builtin`` names the module whose import
    registers the built-in objects (imported lazily, so that ``import robustkit`` stays cheap).
    """

    def __init__(self, kind: str, group: str | None = None, builtin: str | None = None):
        self.kind = kind
        self.group = group
        self.builtin = builtin
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False
        #: The error of a plug-in that cannot be loaded (message, cause), raised on every lookup.
        self._broken: tuple[str, Exception | None] | None = None

    # -- registration -----------------------------------------------------------------------
    def register(self, name: str, **metadata: Any) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` with ``metadata``."""

        def decorator(obj: T) -> T:
            self.add(name, obj, **metadata)
            return obj

        return decorator

    def add(self, name: str, obj: T, **metadata: Any) -> None:
        """Register ``obj`` under ``name``; a name is registered once. An attack or defense
        class that does not set its ``name`` itself gets this one (runs record it).

        The built-in objects are registered first (their module is imported here, where it
        was not yet), so that a name of theirs is refused at the user's registration, not in
        the middle of theirs. The same definition run again (a notebook cell, a reloaded
        module: an object of the same module and qualified name, not a lambda) replaces its
        entry."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"invalid {self.kind} name {name!r}")
        if self.builtin and self.builtin not in sys.modules:  # (importing puts it there first)
            importlib.import_module(self.builtin)
        existing = self._entries.get(name)
        if existing is not None and existing.obj is not obj and not _redefined(existing.obj, obj):
            raise RobustkitError(f"{self.kind} {name!r} is already registered; pick another name")
        if isinstance(obj, type) and isinstance(getattr(obj, "name", None), str):
            if "name" not in vars(obj):  # an attack or defense class is known by this name
                obj.name = name  # (it ran as "" or as its base's: a PGD subclass as "pgd")
        self._entries[name] = Entry(name, obj, dict(metadata))

    # -- lookup -----------------------------------------------------------------------------
    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # (first: the built-ins' registrations look nothing up)
            try:
                if self.builtin:
                    importlib.import_module(self.builtin)
                for ep in entry_points(group=self.group) if self.group else ():
                    problem = self._load_plugin(ep)  # all of them, a broken one refused after
                    if problem and not self._broken:
                        self._broken = problem
            except BaseException:  # a Ctrl-C while PyTorch loads: the next lookup loads them
                self._loaded = False  # (those loaded already are not loaded twice)
                raise
        if self._broken:  # every lookup, not the first only: a later one read on without it
            raise RobustkitError(self._broken[0]) from self._broken[1]

    def _load_plugin(self, ep: Any) -> tuple[str, Exception | None] | None:
        """Register entry point ``ep``'s object; what is wrong with it (the message and the
        exception behind it), or None."""
        before = self._entries.get(ep.name)
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plug-in is a one-line error, not a traceback
            return (
                f"cannot load {self.kind} plug-in {ep.name!r} ({ep.value}): {first_line(exc)}; "
                "fix or uninstall that package",
                exc,
            )
        if isinstance(loaded, ModuleType):
            return None
        if before is not None and before.obj is not loaded:
            # (it was dropped without a word: the name ran the registered one instead)
            return (
                f"{self.kind} plug-in {ep.name!r} ({ep.value}) takes the name of a "
                f"registered {self.kind}; rename its entry point or uninstall that package",
                None,
            )
        if ep.name not in self._entries:  # (a module may have registered it on import)
            self.add(ep.name, loaded)
        return None

    def entry(self, name: str) -> Entry[T]:
        """The entry registered under ``name`` (or under the one name that differs from it
        only in case: ``PGD`` is ``pgd``); unknown names raise with suggestions."""
        if not isinstance(name, str):
            raise UnknownNameError(
                f"{self.kind} names are strings (`robustkit {self.kind}s` lists them), got "
                f"{type(name).__name__} {name!r:.40}"
            )
        found = self.find(name)
        if found is None:
            raise UnknownNameError(self._unknown_message(name))
        return found

    def find(self, name: object) -> Entry[T] | None:
        """The entry registered under ``name`` (or the one name differing only in case), or
        None: one lookup where ``name in registry`` then :meth:`entry` would make two."""
        self._load()
        if not isinstance(name, str):
            return None
        if name in self._entries:
            return self._entries[name]
        folded = [n for n in self._entries if n.casefold() == name.casefold()]
        return self._entries[folded[0]] if len(folded) == 1 else None

    def get(self, name: str) -> T:
        """The object registered under ``name``."""
        return self.entry(name).obj

    def __contains__(self, name: object) -> bool:
        return self.find(name) is not None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the glob ``pattern``, in any case (as names are looked up:
        ``MNIST/*`` lists the ``mnist/`` models)."""
        if not isinstance(pattern, str):  # (a number failed with an AttributeError)
            raise RobustkitError(
                f"a {self.kind} name pattern is text, a glob such as '*' or 'cifar10/*', "
                f"got {pattern!r}"
            )
        self._load()
        folded = pattern.casefold()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n.casefold(), folded))

    def entries(self, pattern: str = "*") -> list[Entry[T]]:
        """Entries whose names match ``pattern``, sorted by name."""
        return [self._entries[n] for n in self.names(pattern)]

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self.entries())

    def _unknown_message(self, name: str) -> str:
        by_folded: dict[str, list[str]] = {}
        for n in self._entries:  # compared case-insensitively: "PGD" suggests "pgd"
            by_folded.setdefault(n.casefold(), []).append(n)
        folded = difflib.get_close_matches(name.casefold(), list(by_folded), n=3, cutoff=0.5)
        close = [n for f in folded for n in sorted(by_folded[f])]
        if not close:  # a bare architecture name ("resnet20") should still find "cifar10/resnet20"
            tail = name.split("/")[-1].casefold()
            close = [n for n in sorted(self._entries) if n.split("/")[-1].casefold() == tail]
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = f"`robustkit {self.kind}s` lists them"
        return f"unknown {self.kind} {name!r}; " + (f"{hint} ({listing})" if hint else listing)


#: Registered classifiers: name -> factory ``(weights_path: str | None) -> nn.Module``.
MODELS: Registry[Any] = Registry("model", "robustkit.models", "robustkit.zoo")
#: Registered attacks: name -> :class:`robustkit.attack.Attack` subclass.
ATTACKS: Registry[Any] = Registry("attack", "robustkit.attacks", "robustkit.attacks")
#: Registered defenses: name -> :class:`robustkit.defense.Defense` subclass.
DEFENSES: Registry[Any] = Registry("defense", "robustkit.defenses", "robustkit.defenses")
