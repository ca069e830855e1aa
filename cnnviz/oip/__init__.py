"""Optimal input patterns: gradient ascent on the input, for all filters of a layer at once."""
