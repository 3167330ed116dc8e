"""robustkit's defenses, one module per defense; importing this package registers them."""

from . import bit_depth, ensemble, input_noise  # noqa: F401
