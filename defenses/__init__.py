"""robustkit's defenses, one module per defense; importing this package registers them."""
