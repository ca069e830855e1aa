"""Random strings and numbers through every command's options: each run ends in success, a
usage error or one clear line — never a traceback, never "unexpected". The computations
themselves are replaced by a stand-in that stops the run once every check before them passed
(what is checked here is the way in, not the work)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.errors import CnnvizError

runner = CliRunner()

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
NUMBER = st.one_of(st.integers(-10**12, 10**12).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(
                       lambda v: "nan" if math.isnan(v) else str(v)),
                   st.sampled_from(["0", "-1", "1e999", "0x10", "3,", ",", "1,2,3", ""]))
VALUE = st.one_of(TEXT, NUMBER)
OPTIONS = {
    "filters": ["--layer", "--filters", "--steps", "--lr", "--scale", "--start", "--objective",
                "--preset", "--colour", "--seed", "--budget", "--batch", "--size", "--examples",
                "--jitter", "--rotate", "--settle", "--decay", "--method", "--param", "--order"],
    "explain": ["--target", "--target-layer", "--method", "--baseline", "--index", "--digit",
                "--layer", "--seed", "--size", "--preprocess", "--output"],
    "activations": ["--layers", "--index", "--digit", "--scale", "--size", "--image"],
    "patterns": ["--layer", "--class", "--top", "--batch", "--split", "--data", "--checkpoint",
                 "--shard"],
    "layers": ["--size"],
    "kernels": ["--layer", "--channel"],
    "train": ["--conv", "--pool-after", "--dense", "--epochs", "--batch-size", "--lr",
              "--schedule", "--seed", "--n-train", "--data"],
}


class ReachedError(CnnvizError):
    """The stand-in for a computation: every check before it passed."""


def _stand_in(*args, **kwargs):
    raise ReachedError("stand-in: the computation would start here")


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    import importlib

    for module, name in (("cnnviz.jobs.filters", "visualize_filters"),
                         ("cnnviz.jobs.maps", "activations"),
                         ("cnnviz.parts.kinds", "class_patterns"),
                         ("cnnviz.jobs.explain", "explain"), ("cnnviz.training.train", "train")):
        monkeypatch.setattr(importlib.import_module(module), name, _stand_in)


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    names = draw(st.lists(st.sampled_from(OPTIONS[command]), min_size=1, max_size=3,
                          unique=True))
    args = [command]
    for name in names:
        args += [name, draw(VALUE)]
    return args


@pytest.mark.slow
@given(command_lines())
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_random_options_end_in_one_clear_line(tmp_path_factory, args):
    out = tmp_path_factory.mktemp("fuzz")
    target = out / ("m.keras" if args[0] == "train" else "out")
    result = runner.invoke(app, [*args] if args[0] == "layers" else [*args, "--out",
                                                                       str(target)])
    text = result.output
    assert "Traceback" not in text and "unexpected" not in text, (args, text)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, text)
    if result.exit_code == 1:
        assert text.strip().splitlines()[-1].startswith("error:"), (args, text)
