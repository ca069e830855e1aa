"""Where the time goes: phases counted once each, compiles counted when they trace, the
progress line says what the command is doing, and --verbose ends with the phase times."""

import os
import pty
import re
import select
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.core.backend import compile_step, keras
from cnnviz.core.timing import listening, phase, recording, span


def test_nested_phases_count_once_and_spans_keep_the_whole():
    heard = []
    with recording() as phases, listening(heard.append), phase("compute"), span("ascent"):
        time.sleep(0.05)
        with phase("render"):
            time.sleep(0.1)
            with phase("write"):
                time.sleep(0.05)
        with phase("compute"):  # the same phase inside itself counts once
            time.sleep(0.05)
    seconds = phases.seconds
    assert abs(seconds["compute"] - 0.10) < 0.03
    assert abs(seconds["render"] - 0.10) < 0.03 and abs(seconds["write"] - 0.05) < 0.03
    assert abs(phases.spans["ascent"] - 0.25) < 0.05
    assert heard == ["compute", "render", "write", "render", "compute", "compute", "compute",
                     ""]
    line = phases.line()
    assert line.index("compute") < line.index("render") < line.index("write") < \
        line.index("other")


def test_a_compile_is_a_call_with_new_shapes():
    ops = keras().ops
    double = compile_step(lambda x: x * 2.0)
    with recording() as phases:
        double(ops.convert_to_tensor(np.ones((2, 3), np.float32)))
        first = phases.seconds.get("compile", 0.0)
        double(ops.convert_to_tensor(np.ones((2, 3), np.float32)))  # traced already
        assert phases.seconds["compile"] == first > 0
        double(ops.convert_to_tensor(np.ones((4, 3), np.float32)))  # a new shape traces
        assert phases.seconds["compile"] > first


def test_verbose_ends_with_the_phase_times(tmp_path):
    result = CliRunner().invoke(app, ["--verbose", "kernels", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"time: (\w+ \d+\.\d\d s · )+other \d+\.\d\d s \(\d+\.\d\d s\)", last)
    assert "render" in last and "write" in last


def _terminal_run(args, cwd):
    """Run the console script in a pseudo-terminal; everything it drew, escapes removed."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "140", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "cnnviz.cli", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, cwd=cwd)
    os.close(slave)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
        elif proc.poll() is not None:
            break
    proc.wait()
    os.close(master)
    return proc.returncode, re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]", b"", drawn).decode(errors="replace")


@pytest.mark.slow
def test_the_progress_line_says_what_the_command_does(tmp_path):
    code, drawn = _terminal_run(["filters", "--layer", "conv2d_2", "--filters", "0-3",
                                 "--steps", "300", "--no-reference", "--out", "f"], tmp_path)
    assert code == 0, drawn
    for doing in ("cnnviz filters: starting Keras", "cnnviz filters: loading",
                  "ascent steps: compiling", "cnnviz filters: drawing"):
        assert doing in drawn, doing
    # the default's two precursors of 20 steps first (a step of both counts once): 320 in all
    assert re.search(r"ascent steps: computing [━╺╸ ]*\d+/320 ", drawn)
    assert "0/?" not in drawn and "wrote" in drawn
