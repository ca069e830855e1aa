"""The one parts engine: plan → parts → runner (in this process or on Ray) → exact merge, used by
the atlas, ``filters --ray`` and ``patterns --ray``."""
