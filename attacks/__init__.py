"""robustkit's attacks, one module per family; importing this package registers them."""
