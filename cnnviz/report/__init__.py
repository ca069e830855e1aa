"""One self-contained HTML report of a model."""
