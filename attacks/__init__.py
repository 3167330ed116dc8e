"""robustkit's attacks, one module per family; importing this package registers them."""

if __name__ == "robustkit.attacks":
    # White-box (gradient) attacks, then decision-based (label-only) attacks.
    from . import apgd, auto, cgba, geoda, hsja, pgd  # noqa: F401
else:  # the source directory imported as `attacks` (from the repository root): the package
    from robustkit.registry import alias_package

    alias_package(__name__, "robustkit.attacks")
