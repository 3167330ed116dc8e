"""robustkit's attacks, one module per family; importing this package registers them."""

# White-box (gradient) attacks.
# Decision-based (label-only) attacks.
from . import apgd, auto, cgba, geoda, hsja, pgd  # noqa: F401  # noqa: E402,F401
