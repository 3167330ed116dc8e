"""robustkit's attacks, one module per family; importing this package registers them."""

# Decision-based (label-only) attacks.
from . import cgba, geoda, hsja  # noqa: E402,F401
