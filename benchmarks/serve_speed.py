"""How fast the live explorer answers, side by side in one run.

    python benchmarks/serve_speed.py [--strokes 200] [--model FILE]

- Server time per stroke: the app's update callback (``respond``, what Dash calls on every
  stroke) with the answer encoded to JSON as Dash sends it, driven by ``--strokes`` drawing
  events (pen strokes of 30 points; each event carries every stroke so far, as plotly sends
  them; the canvas is cleared after five). One row per layer and attribution method: p50, p95
  and max in ms, and the answer's size. Target (issue 14): p95 ≤ 150 ms on the bundled model
  on 2 CPU cores, with the default view (conv2d_3, gradcam).
- The same strokes POSTed to a running server over HTTP (Flask and Dash included).
- Time to first page: ``cnnviz serve --port 0`` as its own process, until its address is
  printed, ``/`` is served and the page's first update is answered.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import threading
import time

import numpy as np


def stroke_events(count: int, seed: int = 0) -> list[list[str]]:
    """``count`` canvas states, each the strokes so far (SVG paths of 30 points)."""
    rng = np.random.default_rng(seed)
    events, strokes = [], []
    for _ in range(count):
        if len(strokes) == 5:
            strokes = []
        start, end = rng.uniform(5, 23, 2), rng.uniform(5, 23, 2)
        bend = rng.uniform(-4, 4, 2)
        t = np.linspace(0, 1, 30)[:, None]
        points = (1 - t) * start + t * end + 4 * t * (1 - t) * bend
        strokes = [*strokes, "M" + "L".join(f"{x:.2f},{y:.2f}" for x, y in points)]
        events.append(strokes)
    return events


def timed_callback(live, events, layer: str, method: str | None) -> tuple[np.ndarray, int]:
    """Per event, the callback's time with JSON encoding (s), and the last answer's bytes."""
    from plotly.io.json import to_json_plotly

    from cnnviz.serve.app import respond

    times, size = [], 0
    for strokes in events:
        shapes = {"shapes": [{"path": p} for p in strokes]}
        begin = time.perf_counter()
        answer = respond(live, "canvas", shapes, None, None, layer, method, 0, [],
                         {"kind": "draw"})
        size = len(to_json_plotly(list(answer)))
        times.append(time.perf_counter() - begin)
    return np.asarray(times), size


def over_http(app, events, layer: str, method: str) -> np.ndarray:
    """Per event, the time of the page's POST to a running server (s)."""
    from cnnviz.serve.app import make_server

    server = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outputs = ["strokes.data", "current.data", "canvas.figure", "output.figure", "maps.figure",
               "attribution.figure", "message.children", "message.className", "page.options",
               "page.value"]
    times = []
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    for strokes in events:
        inputs = [{"id": "canvas", "property": "relayoutData",
                   "value": {"shapes": [{"path": p} for p in strokes]}},
                  {"id": "clear", "property": "n_clicks"}, {"id": "upload", "property": "data"},
                  {"id": "test", "property": "value"},
                  {"id": "layer", "property": "value", "value": layer},
                  {"id": "method", "property": "value", "value": method},
                  {"id": "page", "property": "value", "value": 0}]
        body = json.dumps({
            "output": ".." + "...".join(outputs) + "..",
            "outputs": [dict(zip(("id", "property"), o.split("."), strict=True))
                        for o in outputs],
            "inputs": inputs, "changedPropIds": ["canvas.relayoutData"],
            "state": [{"id": "strokes", "property": "data", "value": []},
                      {"id": "current", "property": "data", "value": {"kind": "draw"}}]})
        begin = time.perf_counter()
        connection.request("POST", "/_dash-update-component", body=body,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - begin)
        assert response.status == 200, response.status
    server.shutdown()
    return np.asarray(times)


def first_page(model: str | None) -> dict[str, float]:
    """Seconds from starting ``cnnviz serve`` to its address, its page and its first answer."""
    command = [sys.executable, "-m", "cnnviz.cli", "serve", "--port", "0",
               *([model] if model else [])]
    begin = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = process.stdout.readline()
        listening = time.perf_counter() - begin
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/")
        connection.getresponse().read()
        page = time.perf_counter() - begin
        for path in ("/_dash-layout", "/_dash-dependencies"):
            connection.request("GET", path)
            connection.getresponse().read()
        return {"listening": listening, "page": page, "layout": time.perf_counter() - begin}
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=200)
    parser.add_argument("--model", default=None, help="model file (default: the bundled CNN)")
    args = parser.parse_args()

    from cnnviz.jobs.serve import explorer_app
    from cnnviz.model.facts import load

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")
    start = first_page(args.model)
    print(f"time to first page (cnnviz serve as its own process): listening after "
          f"{start['listening']:.2f} s, page served at {start['page']:.2f} s, layout and "
          f"callbacks at {start['layout']:.2f} s")
    facts = load(args.model)
    app, live = explorer_app(facts)
    events = stroke_events(args.strokes)
    layers = [live.explorer.layers[-1], *[n for n in live.explorer.layers[:-1]
                                           if n.startswith("conv")][:1]]
    methods = [None, "saliency", "gradcam", "gradcam++", "layercam", "integrated_gradients",
               "smoothgrad"]
    print(f"\nserver time per stroke, {args.strokes} strokes (callback + JSON), ms")
    print(f"{'layer':<18} {'attribution':<22} {'p50':>7} {'p95':>7} {'max':>7} {'answer':>10}")
    for layer in layers:
        for method in methods:
            timed_callback(live, events[:3], layer, method)  # its compiled passes
            times, size = timed_callback(live, events, layer, method)
            p50, p95 = np.percentile(times, [50, 95]) * 1000
            print(f"{layer:<18} {method or 'none':<22} {p50:7.1f} {p95:7.1f} "
                  f"{times.max() * 1000:7.1f} {size / 1024:8.0f} KB")
    default = live.explorer.layers[-1]
    times = over_http(app, events, default, "gradcam")
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    print(f"\nover HTTP ({default}, gradcam): p50 {p50:.1f} ms, p95 {p95:.1f} ms, max "
          f"{times.max() * 1000:.1f} ms (target p95 ≤ 150 ms)")


if __name__ == "__main__":
    main()
