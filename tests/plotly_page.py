"""Read back the plotly figures that a self-contained cnnviz HTML page embeds."""

from __future__ import annotations

import base64
import json
import re

import numpy as np


def figures(page: str) -> list[dict]:
    """Each ``Plotly.newPlot(id, data, layout, config)`` call of the page as a dict."""
    decoder = json.JSONDecoder()
    specs = []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        data, end = decoder.raw_decode(page, match.end())
        end = re.compile(r"\s*,\s*").match(page, end).end()
        layout, _ = decoder.raw_decode(page, end)
        spec = {"id": match.group(1), "data": data, "layout": layout}
        frames = re.compile(r"Plotly\.addFrames\(\s*'([^']+)',\s*").search(page, end)
        if frames and frames.group(1) == match.group(1):
            spec["frames"] = decoder.raw_decode(page, frames.end())[0]
        specs.append(spec)
    return specs


def array(value) -> np.ndarray:
    """A trace array as numpy: plotly encodes numpy arrays as base64 ``{dtype, bdata, shape}``."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(s) for s in str(value.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.array(value, dtype=float)
