"""robustkit's defenses, one module per defense; importing this package registers them."""

if __name__ == "robustkit.defenses":
    from . import bit_depth, ensemble, input_noise  # noqa: F401
else:  # the source directory imported as `defenses` (from the repository root): the package
    from robustkit.registry import alias_package

    alias_package(__name__, "robustkit.defenses")
