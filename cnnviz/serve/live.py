"""The explorer's answers to what happens in the page, apart from Dash: a stroke drawn, an
image uploaded or picked, a layer, method or page of maps chosen, a map clicked. Each returns
the figures and message the page shows; Dash only wires them to the page's components."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from cnnviz.attribution import CAMS
from cnnviz.core.errors import CnnvizError
from cnnviz.data.images import to_model_input
from cnnviz.render.tiles import data_url
from cnnviz.serve import figures
from cnnviz.serve.engine import Explorer, FilterView
from cnnviz.serve.raster import MAX_STROKES, rasterize, strokes_from_shapes
from cnnviz.serve.uploads import decode_upload

PAGE = 128  # maps shown at once
UPLOADS_KEPT = 32


class LiveView:
    """Turns page events into figures for one :class:`Explorer`; safe across threads."""

    def __init__(self, explorer: Explorer, tests: int = 60) -> None:
        self.explorer = explorer
        self.test_pixels, self.test_names = explorer.test_images(tests)
        self._uploads: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def strokes(self, relayout: Any, strokes: list[str] | None) -> list[str] | None:
        """The canvas's strokes (SVG paths) after a relayout event, or ``None`` when the event
        did not touch them (a resize)."""
        if not isinstance(relayout, dict):
            return None
        if isinstance(relayout.get("shapes"), list):
            return [s.get("path", "") for s in relayout["shapes"][:MAX_STROKES + 1]
                    if isinstance(s, dict)]
        edited = list(strokes or [])
        touched = False
        for key, value in relayout.items():
            if key.startswith("shapes[") and key.endswith("].path") and isinstance(value, str):
                index = key[len("shapes["):-len("].path")]
                if index.isdigit() and int(index) < len(edited):
                    edited[int(index)] = value
                    touched = True
        return edited if touched else None

    def keep_upload(self, upload: Any) -> dict[str, Any]:
        """Decode an upload (``{"contents", "name"}`` or ``{"error"}`` from the page's own size
        check) and keep its pixels; returns the input it becomes."""
        if not isinstance(upload, dict):
            raise CnnvizError("the upload did not arrive")
        if upload.get("error"):
            raise CnnvizError(str(upload["error"])[:200])
        shape = tuple(self.explorer.shape)
        decoded = decode_upload(upload.get("contents"), upload.get("name"), fit=shape[:2])
        # kept as the model sees it: its size, its channels, float32 in 0..1 (a 16-megapixel
        # upload costs what a model input costs, whatever its file size)
        pixels = to_model_input(decoded, shape, (0.0, 1.0)).astype(np.float32)
        key = hashlib.sha256(str(upload.get("contents")).encode()).hexdigest()[:16]
        with self._lock:
            self._uploads[key] = pixels
            self._uploads.move_to_end(key)
            while len(self._uploads) > UPLOADS_KEPT:
                self._uploads.popitem(last=False)
        return {"kind": "upload", "key": key, "name": str(upload.get("name") or "upload")[:80]}

    def pixels(self, current: Any, strokes: list[str] | None) -> tuple[np.ndarray, str]:
        """The chosen input's display pixels and a line that names it."""
        kind = current.get("kind") if isinstance(current, dict) else "draw"
        if kind == "test":
            index = current.get("index")
            if not isinstance(index, int) or not 0 <= index < len(self.test_names):
                raise CnnvizError("no such test image")
            return self.test_pixels[index], f"test image {self.test_names[index]}"
        if kind == "upload":
            with self._lock:
                found = self._uploads.get(str(current.get("key")))
            if found is None:
                raise CnnvizError("that upload is no longer kept: upload it again")
            height, width = found.shape[:2]
            return found, f"upload {current.get('name', '')} (as the model sees it: " \
                          f"{width}×{height})"
        if not self.explorer.drawable:
            raise CnnvizError("upload an image or pick one from the menu")
        shapes = [{"path": p} for p in (strokes or []) if isinstance(p, str)]
        drawn = rasterize(strokes_from_shapes(shapes))
        note = "your drawing" if drawn.any() else "an empty canvas: draw a digit with the mouse"
        return drawn[..., None], note

    def view(self, current: Any, strokes: list[str] | None, layer: str, method: str | None,
             page: int | None) -> dict[str, Any]:
        """The figures for the current input: output bars, the layer's maps, the attribution."""
        pixels, note = self.pixels(current, strokes)
        look = self.explorer.look(pixels, layer, method or None)
        total = look.maps.shape[-1]
        first = int(page or 0) if isinstance(page, int) and 0 <= int(page or 0) < total else 0
        names = self.explorer.class_names
        best = int(np.argmax(look.output)) if look.output.ndim == 1 else 0
        predicted = names[best] if best < len(names) else str(best)
        return {"output": figures.output_figure(look.output, names),
                "maps": figures.maps_figure(look.maps, layer, first, PAGE),
                "attribution": figures.attribution_figure(
                    look.pixels, look.attribution, look.signed, self._method_name(look),
                    predicted),
                "note": note, "pages": page_options(total)}

    def _method_name(self, look: Any) -> str | None:
        """The method as the attribution's title names it (a CAM with its layer)."""
        if look.method in CAMS:
            return f"{look.method} at {self.explorer.cam_layer(look.layer)}"
        return look.method

    def filter_panel(self, layer: str, index: int) -> dict[str, Any]:
        """What the page shows of filter ``index``: its pattern and examples as PNG data URLs,
        their captions and its class profile."""
        view = self.explorer.filter_view(layer, index)
        return panel(view, self.explorer)


def page_options(total: int) -> list[dict[str, Any]]:
    """The menu of map pages for a layer of ``total`` maps."""
    return [{"label": f"maps {a}–{min(a + PAGE, total) - 1}", "value": a}
            for a in range(0, total, PAGE)]


def panel(view: FilterView, explorer: Explorer) -> dict[str, Any]:
    """A filter's panel contents (plain values; the page lays them out)."""
    origin = ("from the atlas" if view.origin == "atlas" else
              f"computed now: default preset, {explorer.steps} steps, seed {explorer.seed}")
    is_class = view.layer == explorer.classes_layer
    names = explorer.class_names
    what = (f"class {names[view.index] if view.index < len(names) else view.index}"
            if is_class else f"filter {view.index}")
    found: dict[str, Any] = {
        "title": f"{view.layer} · {what}",
        "pattern": data_url(view.pattern, 224),
        "caption": (f"what the model takes {what} to be: the image its logit (before the "
                    f"softmax) answers most ({origin}); its probability {view.output:.4g}"
                    if is_class else
                    f"optimal input pattern ({origin}); its output {view.output:.4g}")}
    if view.strip is not None:
        found["strip"] = data_url(view.strip, 96)
        lit = ":" if is_class else ", its map lighting each:"
        found["examples"] = f"real images that excite it most{lit} " + \
            ", ".join(f"{name} ({value:.3g})" for name, value in
                      zip(view.labels, view.values, strict=True))
    else:
        found["examples"] = "no data to rank real images: pass --data"
    if view.profile is not None:
        found["profile"] = figures.profile_figure(
            *view.profile, view.class_names,
            f"mean {'probability' if is_class else 'activation'} per class (± std)")
    return found
