"""A whole-model atlas: every filter of every conv layer with its optimal input pattern, the
real images that excite it most and the classes it prefers, computed in resumable parts."""

from cnnviz.atlas.stats import MapStatistics, map_statistics, top_k

__all__ = ["MapStatistics", "map_statistics", "top_k"]
