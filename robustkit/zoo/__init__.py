"""The model zoo (filled in by the zoo work)."""
