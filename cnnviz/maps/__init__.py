"""What a model's maps hold for real inputs: per-map activations, class patterns and top
examples as streaming reductions over data."""
