"""One table per extension point: the library's checks and dispatch, the CLI's choices, the
explorer's menu and the README read the same table; SmoothGrad's noise tunnel wraps any
method."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import typer

from cnnviz.attribution import (
    ATTRIBUTIONS,
    METHODS,
    GradCAM,
    Saliency,
    SmoothGrad,
    explain,
    make_method,
)
from cnnviz.cli import app
from cnnviz.core import tables
from cnnviz.core.errors import CnnvizError

ROOT = Path(__file__).resolve().parent.parent
COMMANDS_PAGE = (ROOT / "docs" / "commands.md").read_text()


def _options():
    command = typer.main.get_command(app)
    for name, sub in command.commands.items():
        for param in sub.params:
            yield name, param


def test_every_listed_choice_on_the_command_line_is_a_table():
    """No hand-written [a|b|c]: each bracketed metavar is a table's names (plus the forms a
    start takes)."""
    choices = {frozenset(t.names()) for t in tables.ALL}
    choices.add(frozenset(tables.STARTS.names(image=False)))
    choices.add(frozenset((*tables.ATTRIBUTIONS.names(), "all")))  # explain --method
    choices.add(frozenset(n for n in tables.DATA.names() if not re.search(r"[:A-Z]", n)))
    listed = 0
    for command, param in _options():
        metavar = getattr(param, "metavar", None) or ""
        if not metavar.startswith("["):
            continue
        names = {n for n in metavar.strip("[]").split("|") if not re.search(r"[:A-Z]", n)}
        assert frozenset(names) in choices, f"{command} {param.opts[0]}: {metavar}"
        listed += 1
    assert listed >= 15


def test_a_table_checks_in_one_line_and_keeps_its_order():
    assert tables.ORDERS.check("index") == "index"
    with pytest.raises(CnnvizError, match="unknown order 'size': use index or activation"):
        tables.ORDERS.check("size")
    with pytest.raises(CnnvizError, match="unknown attribution method 'x': use one of "
                                          "saliency, smoothgrad, integrated_gradients, gradcam"):
        ATTRIBUTIONS.check("x")
    assert ATTRIBUTIONS.names() == METHODS and METHODS[0] == "saliency"
    assert ATTRIBUTIONS.names(layer=True) == ("gradcam", "gradcam++", "layercam")
    assert tables.BASELINES.names(references=True) == ("mean", "expected")
    assert tables.STARTS.metavar("image:PATH", image=False) == "[noise|grey|image:PATH]"


def test_table_factories_dispatch(tiny_model):
    for entry in ATTRIBUTIONS:
        method = make_method(entry.name, tiny_model, layer="conv", seed=3)
        assert method.signed == entry.signed
        assert (getattr(method, "layer", None) == "conv") == entry.layer
    from cnnviz.oip import objectives as obj
    from cnnviz.oip.presets import make_objective

    for entry in tables.OBJECTIVES:
        if entry.factory:
            assert make_objective(entry.name, "conv").key == entry.load()("conv").key
    with pytest.raises(CnnvizError, match="resolved by objective_kind first"):
        make_objective("auto", "conv")
    assert make_objective("channel", "conv").key == obj.channel("conv").key


def test_explain_reads_the_traits(tiny_model):
    x = np.random.default_rng(0).random((1, 6, 6, 1)).astype(np.float32)
    result = explain(tiny_model, x, ("saliency", "integrated_gradients", "gradcam"),
                     layer="conv")
    assert result.params["signed"] == {"saliency": True, "integrated_gradients": True,
                                       "gradcam": False}
    assert result.params["baseline"] == "black" and len(result.params["completeness"]) == 1
    assert result.meta.layers == ("conv",)


def test_the_noise_tunnel_wraps_any_method(tiny_model):
    x = np.random.default_rng(1).random((2, 6, 6, 1)).astype(np.float32)
    cam = GradCAM(tiny_model, "conv")
    quiet = SmoothGrad(cam, samples=3, noise=0.0)
    np.testing.assert_allclose(quiet.attribute(x, target=1), cam.attribute(x, target=1),
                               rtol=1e-6)
    assert quiet.signed is False and quiet.layer == "conv"
    noisy = SmoothGrad(cam, samples=4, noise=0.2, seed=5).attribute(x)
    assert noisy.shape == (2, 6, 6) and (noisy >= 0).all()
    # the target is chosen on the clean input, then explained in every noisy copy
    np.testing.assert_array_equal(quiet.targets(x, None).channel,
                                  cam.targets(x, None).channel)
    saliency = Saliency(tiny_model)
    np.testing.assert_allclose(SmoothGrad(saliency, samples=2, noise=0.0).attribute(x, 0),
                               saliency.attribute(x, 0), rtol=1e-6)


def test_the_commands_page_lists_every_choice_as_the_command_line_does():
    """docs/commands.md shows each option's choices as the CLI's table gives them."""
    shown = {(command, param.opts[0]): param.metavar for command, param in _options()}
    for command, option in [("explain", "--method"), ("explain", "--baseline"),
                            ("filters", "--preset"), ("filters", "--objective"),
                            ("filters", "--start"), ("filters", "--colour"),
                            ("filters", "--precision"), ("atlas", "--precision")]:
        listed = shown[(command, option)].strip("[]").replace("|", "\\|")
        assert f"[{option} {listed}]" in COMMANDS_PAGE, (command, option)


def test_the_command_tables_list_every_command():
    """Each command of the CLI has its row in the README's short table and in docs/commands.md,
    and no row names a command that does not exist."""
    command = typer.main.get_command(app)
    for text in ((ROOT / "README.md").read_text(), COMMANDS_PAGE):
        rows = set(re.findall(r"^\| `cnnviz ([a-z][a-z-]*)", text, flags=re.MULTILINE))
        assert rows == set(command.commands)


def test_data_specs_are_read_by_their_row(tmp_path):
    """Each form of tables.DATA reaches its factory; the help and the error list the rows."""
    from cnnviz.data.sources import open_source

    assert open_source("bundled").name == "mnist-sample test"
    folder = tmp_path / "pics" / "cat"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.fromarray(np.zeros((5, 5), np.uint8)).save(folder / "a.png")
    assert open_source(str(tmp_path / "pics")).class_names == ("cat",)
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.array([0, 1, 1]))
    assert open_source(str(tmp_path / "d.npz")).size() == 3
    with pytest.raises(CnnvizError, match="unknown data set 'mnist': use bundled, FOLDER, "
                                          "FILE.npz, tfds:NAME\\[:SPLIT\\], keras or fashion"):
        open_source("mnist")
    with pytest.raises(CnnvizError, match="data not found: nowhere/x.npz"):
        open_source("nowhere/x.npz")
    assert all(e.help in tables.DATA.helps() for e in tables.DATA)


def test_the_command_line_is_the_command_table():
    """Every command is a row of tables.COMMANDS, in its order; each names its one library
    call, and the commands that continue with --resume are the ones with that flag."""
    import importlib

    command = typer.main.get_command(app)
    assert list(command.commands) == list(tables.COMMANDS.names())
    for entry in tables.COMMANDS:
        module, _, name = entry.job.partition(":")
        assert callable(getattr(importlib.import_module(f"cnnviz.jobs.{module}"), name))
        flags = {o for p in command.commands[entry.name].params for o in p.opts}
        assert ("--resume" in flags) == (entry.resume == "flag"), entry.name
    assert set(tables.COMMANDS.names(resume="rerun")) == {"atlas", "gallery"}
