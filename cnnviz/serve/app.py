"""The explorer's Dash app and its server: the page's layout, the callbacks that hand page
events to :class:`~cnnviz.serve.live.LiveView`, and a server bound to one address that stops
cleanly on Ctrl-C."""

from __future__ import annotations

import inspect
import ipaddress
import logging
import traceback
from collections.abc import Callable
from typing import Any

from cnnviz.attribution import METHODS
from cnnviz.core.errors import CnnvizError
from cnnviz.serve.figures import canvas_figure
from cnnviz.serve.live import LiveView, page_options
from cnnviz.serve.uploads import MAX_BYTES

_CSS = """body{font-family:system-ui,sans-serif;margin:0 1.2em;color:#222}
.row{display:flex;gap:1.2em;flex-wrap:wrap;align-items:flex-start}
.col{display:flex;flex-direction:column;gap:.5em}.note{color:#555;font-size:13px}
#message{min-height:1.4em;font-size:14px}.error{color:#b00}
.upload{border:1px dashed #999;padding:.6em;text-align:center;width:256px;cursor:pointer}
.pattern{image-rendering:pixelated;border:1px solid #bbb;width:224px}
.strip{image-rendering:pixelated;max-width:560px;border:1px solid #bbb}
button{padding:.3em 1em}"""

_INDEX = """<!DOCTYPE html><html><head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}
<style>""" + _CSS + """</style></head><body>{%app_entry%}<footer>{%config%}{%scripts%}
{%renderer%}</footer></body></html>"""

# The page checks an upload's size before sending it: a large file never reaches the server.
_CHECK_UPLOAD = """function(contents, name) {
  if (!contents) { return window.dash_clientside.no_update; }
  if (contents.length > LENGTH) {
    return {error: (name || "the file") + " is larger than MIB MiB: shrink it first"};
  }
  return {contents: contents, name: name};
}""".replace("LENGTH", str((MAX_BYTES + 2) // 3 * 4 + 64)).replace("MIB", str(MAX_BYTES // 2**20))

log = logging.getLogger("cnnviz.serve")


def create_app(live: LiveView) -> Any:
    """The Dash app of the explorer for ``live``."""
    try:
        import dash
    except ImportError:
        raise CnnvizError("the explorer needs Dash: pip install 'cnnviz[serve]'") from None
    from dash import Input, Output, State, dcc, html

    explorer = live.explorer
    closed = {"enable_mcp": False} if "enable_mcp" in inspect.signature(dash.Dash).parameters \
        else {}  # Dash 4.4's endpoint for AI agents stays off
    app = dash.Dash("cnnviz.serve", title=f"cnnviz explorer · {explorer.facts.name}",
                    index_string=_INDEX, include_assets_files=False, serve_locally=True,
                    update_title=None, **closed)
    app.server.config["MAX_CONTENT_LENGTH"] = 2 * MAX_BYTES
    app.layout = _layout(live, dcc, html)

    app.clientside_callback(_CHECK_UPLOAD, Output("upload", "data"),
                            Input("picker", "contents"), State("picker", "filename"))

    @app.callback(
        Output("strokes", "data"), Output("current", "data"), Output("canvas", "figure"),
        Output("output", "figure"), Output("maps", "figure"), Output("attribution", "figure"),
        Output("message", "children"), Output("message", "className"),
        Output("page", "options"), Output("page", "value"),
        Input("canvas", "relayoutData"), Input("clear", "n_clicks"), Input("upload", "data"),
        Input("test", "value"), Input("layer", "value"), Input("method", "value"),
        Input("page", "value"), State("strokes", "data"), State("current", "data"))
    def refresh(relayout, _clear, upload, test, layer, method, page, strokes, current):
        return respond(live, dash.ctx.triggered_id, relayout, upload, test, layer, method,
                       page, strokes, current)

    @app.callback(Output("panel", "children"), Input("maps", "clickData"),
                  Input("output", "clickData"), State("layer", "value"))
    def open_filter(click, bar, layer):
        if dash.ctx.triggered_id == "output":  # a class bar: what the model takes it to be
            return _inspect(live, bar, live.explorer.classes_layer, dcc, html)
        return _inspect(live, click, layer, dcc, html)

    return app


def respond(live: LiveView, trigger: Any, relayout: Any, upload: Any, test: Any, layer: Any,
            method: Any, page: Any, strokes: Any, current: Any) -> tuple[Any, ...]:
    """One page event → the callback's outputs (strokes, input, canvas, output, maps,
    attribution, message, its class, page options, page)."""
    from dash import no_update
    from dash.exceptions import PreventUpdate

    canvas: Any = no_update
    try:
        if trigger == "canvas":
            changed = live.strokes(relayout, strokes)
            if changed is None:
                raise PreventUpdate
            strokes, current = changed, {"kind": "draw"}
        elif trigger == "clear":
            strokes, current, canvas = [], {"kind": "draw"}, canvas_figure()
        elif trigger == "upload":
            current = live.keep_upload(upload)
        elif trigger == "test" and test is not None:
            current = {"kind": "test", "index": test}
        if trigger == "layer":
            page = 0
        found = live.view(current, strokes, layer, method, page)
    except CnnvizError as exc:
        return (no_update,) * 6 + (str(exc), "error", no_update, no_update)
    except PreventUpdate:
        raise
    except Exception as exc:  # the server keeps serving; the page says what went wrong
        log.error("explorer update failed:\n%s", traceback.format_exc())
        return (no_update,) * 6 + (f"internal error: {type(exc).__name__}: {exc}"[:300],
                                   "error", no_update, no_update)
    return (strokes, current, canvas, found["output"], found["maps"], found["attribution"],
            found["note"], "note", found["pages"], page if page else 0)


def _inspect(live: LiveView, click: Any, layer: Any, dcc: Any, html: Any) -> Any:
    from dash.exceptions import PreventUpdate

    try:
        custom = click["points"][0]["customdata"]  # a typed array's row arrives as a dict
        index = int(custom["0"] if isinstance(custom, dict) else
                    custom[0] if isinstance(custom, list) else custom)  # a bar's: a number
    except (TypeError, KeyError, IndexError, ValueError):
        raise PreventUpdate from None
    known = layer in live.explorer.layers or (layer is not None and
                                               layer == live.explorer.classes_layer)
    if not known or not 0 <= index < live.explorer.unit_count(layer):
        raise PreventUpdate  # a gap between maps, or a bar of no class
    try:
        found = live.filter_panel(layer, index)
    except CnnvizError as exc:
        return html.Div(str(exc), className="error")
    except Exception as exc:
        log.error("filter panel failed:\n%s", traceback.format_exc())
        return html.Div(f"internal error: {type(exc).__name__}: {exc}"[:300], className="error")
    children = [html.H3(found["title"], id="panel-title"),
                html.Img(src=found["pattern"], className="pattern", id="pattern",
                         alt=found["title"]),
                html.Div(found["caption"], className="note")]
    if "strip" in found:
        children.append(html.Img(src=found["strip"], className="strip", id="strip"))
    children.append(html.Div(found["examples"], className="note"))
    if "profile" in found:
        children.append(dcc.Graph(figure=found["profile"], config={"displayModeBar": False}))
    return children


def _layout(live: LiveView, dcc: Any, html: Any) -> Any:
    explorer = live.explorer
    static = {"displayModeBar": False}
    inputs: list[Any] = []
    if explorer.drawable:
        inputs += [html.Div("draw a digit", className="note"),
                   dcc.Graph(id="canvas", figure=canvas_figure(),
                             config={"displayModeBar": False, "scrollZoom": False}),
                   html.Button("clear", id="clear")]
    else:  # the ids the callback names exist, hidden
        inputs += [dcc.Graph(id="canvas", figure=canvas_figure(), style={"display": "none"}),
                   html.Button("clear", id="clear", style={"display": "none"})]
    inputs += [dcc.Upload(id="picker", className="upload", max_size=-1,
                          children=html.Div(["drop an image here or ", html.A("choose one")])),
               dcc.Dropdown(id="test", placeholder="or a test image",
                            options=[{"label": n, "value": i}
                                     for i, n in enumerate(live.test_names)],
                            style={"width": "270px"}),
               dcc.Graph(id="attribution", config=static)]
    layers = explorer.layers
    default = _deepest_conv(explorer)
    controls = html.Div(className="row", children=[
        html.Label(["layer ", dcc.Dropdown(id="layer", value=default, clearable=False,
                                           options=layers, style={"width": "220px"})]),
        html.Label(["attribution ", dcc.Dropdown(
            id="method", value="gradcam" if len(explorer.facts.model.outputs[0].shape) == 2
            else None, options=list(METHODS), style={"width": "220px"})]),
        html.Label(["maps ", dcc.Dropdown(id="page", value=0, clearable=False,
                                          options=page_options(1), style={"width": "160px"})])])
    return html.Div([
        html.H2(f"cnnviz explorer · {explorer.facts.name}"),
        html.Div(id="message", className="note"),
        dcc.Store(id="strokes", data=[]), dcc.Store(id="upload"),
        dcc.Store(id="current", data={"kind": "draw"} if explorer.drawable
                  else {"kind": "test", "index": 0} if live.test_names else {"kind": "none"}),
        html.Div(className="row", children=[
            html.Div(inputs, className="col"),
            html.Div([dcc.Graph(id="output", config=static), controls,
                      dcc.Graph(id="maps", config=static)], className="col",
                     style={"flex": "1", "minWidth": "420px"}),
            dcc.Loading(html.Div(id="panel", className="col", style={"width": "580px"},
                                 children=html.Div(_hint(explorer), className="note")))])])


def _hint(explorer: Any) -> str:
    """What the panel shows when clicked."""
    return "click a map to see what its filter looks for" + (
        "; click a class bar to see what the model takes that class to be"
        if explorer.classes_layer else "")


def _deepest_conv(explorer: Any) -> str:
    from cnnviz.model.facts import conv_layers

    found = conv_layers(explorer.facts.model)
    return found[-1] if found else explorer.layers[-1]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(app: Any, host: str, port: int) -> Any:
    """A threaded HTTP server for ``app`` bound to ``host:port`` (port 0: any free one); it
    logs errors, not every request."""
    from werkzeug.serving import make_server as werkzeug_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    try:
        return werkzeug_server(host, port, app.server, threaded=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CnnvizError(f"cannot listen on {host}:{port}: {reason}"
                          + (" (choose another --port)" if "in use" in reason else "")) from None


def run_server(server: Any, ready: Callable[[str], None] | None = None) -> None:
    """Serve until Ctrl-C, then close the socket."""
    if ready is not None:
        ready(f"http://{server.host}:{server.port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
