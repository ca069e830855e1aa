"""The live explorer served for real: many clients at once, no file outside its own reachable,
a digit drawn with the mouse in Chromium, Ctrl-C."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # end to end: a browser or a kernel

pytest.importorskip("dash")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def served():
    from cnnviz.jobs.serve import explorer_app
    from cnnviz.model.facts import load
    from cnnviz.serve.app import make_server

    app, live = explorer_app(load(), steps=10)
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.port, live
    server.shutdown()
    server.server_close()


def _request(port: int, method: str, path: str, body: bytes | None = None
             ) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(method, path, body=body,
                       headers={"Content-Type": "application/json"} if body else {})
    response = connection.getresponse()
    found = response.status, response.read()
    connection.close()
    return found


_OUTPUTS = [("strokes", "data"), ("current", "data"), ("canvas", "figure"),
            ("output", "figure"), ("maps", "figure"), ("attribution", "figure"),
            ("message", "children"), ("message", "className"), ("page", "options"),
            ("page", "value")]


def _pick(index: int, layer: str = "conv2d_3") -> bytes:
    """The request the page sends when test image ``index`` is picked."""
    inputs = [{"id": "canvas", "property": "relayoutData"},
              {"id": "clear", "property": "n_clicks"}, {"id": "upload", "property": "data"},
              {"id": "test", "property": "value", "value": index},
              {"id": "layer", "property": "value", "value": layer},
              {"id": "method", "property": "value", "value": "gradcam"},
              {"id": "page", "property": "value", "value": 0}]
    return json.dumps({
        "output": ".." + "...".join(f"{i}.{p}" for i, p in _OUTPUTS) + "..",
        "outputs": [{"id": i, "property": p} for i, p in _OUTPUTS], "inputs": inputs,
        "changedPropIds": ["test.value"],
        "state": [{"id": "strokes", "property": "data", "value": []},
                  {"id": "current", "property": "data", "value": {"kind": "draw"}}]}).encode()


def test_twenty_clients_at_once_get_their_own_answers(served):
    port, live = served
    x = np.concatenate([live.explorer.model_input(p) for p in live.test_pixels[:20]])
    expected = np.argmax(live.explorer.facts.model.predict(x, verbose=0), axis=1)

    def ask(index: int) -> str:
        status, body = _request(port, "POST", "/_dash-update-component", _pick(index))
        assert status == 200, body[:200]
        return json.loads(body)["response"]["output"]["figure"]["layout"]["title"]["text"]

    with ThreadPoolExecutor(20) as pool:
        titles = list(pool.map(ask, range(20)))
    assert [t.split()[1] for t in titles] == [str(e) for e in expected]


def test_no_request_reads_a_file_outside_the_app(served, tmp_path):
    port, _ = served
    secret = tmp_path / "secret.txt"
    secret.write_text("cnnviz-secret-4711")
    target = str(secret).lstrip("/")
    up = "../" * 12
    paths = [f"/assets/{up}{target}", f"/assets/..%2f..%2f..%2f..%2f..%2f..%2f..%2f{target}",
             f"/_dash-component-suites/dash/{up}{target}",
             f"/_dash-component-suites/dash/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2F{target}",
             f"/_dash-component-suites/plotly/package_data/{up}{target}", f"/{up}{target}",
             f"/_favicon.ico/{up}{target}", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd"]
    for path in paths:
        status, body = _request(port, "GET", path)
        assert b"cnnviz-secret" not in body and b"root:" not in body, path
    sneaky = _pick(0, layer=str(secret))
    status, body = _request(port, "POST", "/_dash-update-component", sneaky)
    assert status == 200 and b"unknown layer" in body and b"cnnviz-secret" not in body


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium")
def test_a_digit_drawn_in_chromium_is_read_and_a_map_opens_its_filter(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    port, _ = served
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is no picture")
    large = tmp_path / "large.png"
    large.write_bytes(b"\x89PNG" + bytes(9 * 2**20))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#output .gtitle", timeout=60_000)
        box = page.locator("#canvas .nsewdrag").bounding_box()
        page.mouse.move(box["x"] + 0.55 * box["width"], box["y"] + 0.15 * box["height"])
        page.mouse.down()
        for i in range(1, 21):
            page.mouse.move(box["x"] + (0.55 - 0.003 * i) * box["width"],
                            box["y"] + (0.15 + 0.035 * i) * box["height"])
        page.mouse.up()
        page.wait_for_function("document.querySelector('#output .gtitle').textContent"
                               ".startsWith('predicted 1')", timeout=20_000)
        page.click("#layer")
        page.get_by_role("option", name="conv2d_1", exact=True).click()
        page.wait_for_function("document.querySelector('#maps .gtitle').textContent"
                               ".startsWith('conv2d_1: 32 maps')", timeout=20_000)
        # the centre of map 5's tile, from the figure's own axes
        xy = page.evaluate("""() => {
            const gd = document.querySelector('#maps .js-plotly-plot');
            const L = gd._fullLayout, r = gd.getBoundingClientRect();
            const tile = 26 + 3, col = 5 % 6, row = Math.floor(5 / 6);
            return [r.left + L._size.l + L.xaxis.l2p(col * tile + 12),
                    r.top + L._size.t + L.yaxis.l2p(row * tile + 12)]; }""")
        page.mouse.click(*xy)
        page.wait_for_selector("#pattern", timeout=60_000)
        title = page.inner_text("#panel-title")
        loaded = page.evaluate("document.querySelector('#pattern').naturalWidth")
        bar = page.locator("#output .point path").nth(1).bounding_box()  # class 1's bar
        page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
        page.wait_for_function("document.querySelector('#panel-title').textContent"
                               " === 'dense_2 · class 1'", timeout=60_000)
        drawn = page.evaluate("document.querySelector('#pattern').naturalWidth")
        page.set_input_files("#picker input[type=file]", str(junk))
        page.wait_for_function("document.querySelector('#message').textContent"
                               ".includes('not an image')", timeout=20_000)
        page.set_input_files("#picker input[type=file]", str(large))  # refused by the page
        page.wait_for_function("document.querySelector('#message').textContent"
                               ".includes('larger than 8 MiB')", timeout=20_000)
        page.click("#clear")  # the server still answers
        page.wait_for_function("document.querySelector('#message').textContent"
                               ".includes('empty canvas')", timeout=20_000)
        browser.close()
    assert title == "conv2d_1 · filter 5" and loaded > 0 and drawn > 0
    assert not errors, errors


def test_the_command_serves_until_ctrl_c(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Ctrl-C as a terminal delivers it: a test run started in the background (a CI script's
    # `pytest &`) has SIGINT ignored, and a child inherits that
    start = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from cnnviz.cli import main; main()")
    process = subprocess.Popen([sys.executable, "-c", start, "serve", "--port", "0",
                                "--host", "0.0.0.0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = process.stdout.readline()
        assert line.startswith("cnnviz explorer at http://0.0.0.0:"), line
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        status, body = _request(port, "GET", "/")
        assert status == 200 and b"cnnviz explorer" in body
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        process.kill()
    errors = process.stderr.read()
    assert code == 0 and "Traceback" not in errors
    assert "warning: listening on 0.0.0.0" in errors and "stopped" in errors
    assert list(tmp_path.iterdir()) == []  # a server writes no file
