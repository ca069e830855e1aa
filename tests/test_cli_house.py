"""The command line's shape: helpful --help, --version, one plotly.js per output folder,
explain saves its numbers, one default-layer rule."""


import tempfile

import numpy as np
import pytest
import typer.main
from plotly_page import array, figures
from typer.testing import CliRunner

from cnnviz.cli import app
from cnnviz.results import Attributions
from cnnviz.version import __version__

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"cnnviz {__version__}"


def test_every_option_has_help_and_choices_show_as_choices():
    command = typer.main.get_command(app)
    for name, sub in command.commands.items():
        for param in sub.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"cnnviz {name} {param.opts[0]} has no help"
    help_text = runner.invoke(app, ["filters", "--help"], env=WIDE).stdout
    for panel in ("Model and data", "Ascent", "Start", "Robustness", "Regularizers", "Output"):
        assert panel in help_text
    assert "--method [rms|adam]" in help_text and "--param [pixel|fourier|maco]" in help_text
    assert "--layer TEXT" in help_text and "--steps INT" in help_text
    assert "--reference / --no-reference" in help_text
    assert "[default: the deepest conv layer]" in help_text  # a default written out in words
    assert "[default: 100]" in help_text
    kernels = runner.invoke(app, ["kernels", "--help"], env=WIDE).stdout
    assert "[default: the first conv layer]" in kernels


def test_help_pages_are_printed_without_parsing_or_heavy_imports(monkeypatch, capsys):
    """``cnnviz [COMMAND] --help`` through the console script prints what the parser's help
    prints, importing neither numpy nor typer's rich help (nor pydantic, which typer ≥ 0.29
    parses with)."""
    import subprocess
    import sys

    from cnnviz.cli import main
    from cnnviz.cli.help import asks_for_help

    names = ["layers", "filters"]
    assert asks_for_help([], names) == "" and asks_for_help(["--help"], names) == ""
    assert asks_for_help(["filters", "--layer", "x", "--help"], names) == "filters"
    assert asks_for_help(["filters", "--", "--help"], names) is None  # a value, not the flag
    assert asks_for_help(["filterz", "--help"], names) is None  # the parser says what is wrong
    assert asks_for_help(["filters", "--layer", "x"], names) is None
    for args in (["filters", "--steps", "5", "--help"], ["--help"], ["explain", "--help"]):
        monkeypatch.setattr(sys, "argv", ["cnnviz", *args])
        main()
        fast = capsys.readouterr().out
        parsed = runner.invoke(app, [a for a in args if a not in ("--steps", "5")]).stdout
        assert fast.rstrip() == parsed.rstrip() and "Usage: cnnviz" in fast
    code = ("import sys\nsys.argv = ['cnnviz', 'filters', '--help']\n"
            "from cnnviz.cli import main\nmain()\n"
            "print('IMPORTED', sorted({'numpy', 'pydantic', 'typer.rich_utils', 'tensorflow'} "
            "& set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "Ascent" in out and "IMPORTED []" in out


def test_a_folder_of_pages_holds_one_plotly_js(tmp_path):
    for args in (["activations", "--digit", "2"], ["kernels"],
                 ["explain", "--digit", "2", "--method", "saliency"]):
        result = runner.invoke(app, [*args, "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
    pages = sorted(tmp_path.glob("*.html"))
    assert [p.name for p in pages] == ["activations.html", "explain.html", "kernels.html"]
    assert [p.name for p in tmp_path.glob("*.js")] == ["plotly.min.js"]
    script = (tmp_path / "plotly.min.js").read_text()
    assert len(script) > 1_000_000 and "plotly" in script[:2000].lower()
    for page in pages:
        text = page.read_text()
        assert '<script src="plotly.min.js"' in text and len(text) < len(script)
        assert figures(text)  # the figures themselves are in the page
    alone = runner.invoke(app, ["kernels", "--standalone", "--out", str(tmp_path / "alone")])
    assert alone.exit_code == 0
    assert not list((tmp_path / "alone").glob("*.js"))
    text = (tmp_path / "alone" / "kernels.html").read_text()
    assert "<script src=" not in text and len(text) > len(script)


def test_explain_saves_its_numbers(tmp_path, reference_model):
    result = runner.invoke(app, ["explain", "--digit", "3", "--method", "all", "--out",
                                 str(tmp_path)])
    assert result.exit_code == 0, result.output
    saved = Attributions.load(tmp_path / "explain.npz")
    assert saved.methods == ["saliency", "smoothgrad", "integrated_gradients", "gradcam",
                             "gradcam++", "layercam", "occlusion", "rise"]
    assert saved.meta.model == reference_model.name and saved.meta.layers == ("conv2d_2",)
    assert saved.targets.tolist() == saved.predictions.tolist() == [3]
    spec = figures((tmp_path / "explain.html").read_text())[0]
    # the input, then the input under each of the eight maps, then the maps
    np.testing.assert_allclose(array(spec["data"][9]["z"]), saved.displayed()["saliency"][0],
                               rtol=1e-6)
    assert "completeness" in saved.params and "add up to the score change" in result.stdout


def test_kernels_default_to_the_first_conv_layer_of_any_model(tmp_path, nested_model):
    from cnnviz.training.train import save_model

    path = save_model(nested_model, tmp_path / "nested.keras")
    result = runner.invoke(app, ["kernels", str(path), "--out", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    spec = figures((tmp_path / "k" / "kernels.html").read_text())[0]
    assert spec["data"][0]["name"] == "base/c1"
    weights = nested_model.get_layer("base").get_layer("c1").get_weights()[0][:, :, 0, :]
    np.testing.assert_allclose(np.nanmax(array(spec["data"][0]["z"])), weights.max())


JAX_RUN = """
import sys


class NoTensorFlow:  # a GPU machine with JAX and no TensorFlow (Keras then never touches it)
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("no tensorflow on this machine")


sys.meta_path.insert(0, NoTensorFlow())
from cnnviz.cli import app
out = sys.argv[1]
for args in (["activations", "--digit", "1"], ["filters", "--layer", "conv2d_1", "--filters",
             "0-3", "--steps", "2", "--examples", "2"], ["explain", "--digit", "1", "--metrics",
             "--baseline", "blur"],
             ["patterns", "--no-dense"]):
    app([*args, "--out", out + "/" + args[0]], standalone_mode=False)
import keras
print("BACKEND", keras.backend.backend(), "TENSORFLOW", "tensorflow" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.one_backend  # stronger where TensorFlow is installed: the TensorFlow stage of CI
def test_commands_run_under_jax_without_tensorflow(tmp_path):
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("jax")
    result = subprocess.run([sys.executable, "-c", JAX_RUN, str(tmp_path)], capture_output=True,
                            text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "BACKEND jax TENSORFLOW False" in result.stdout
    for folder in ("activations", "filters", "explain", "patterns"):
        assert (tmp_path / folder / "plotly.min.js").exists()


CHOICE_RUN = """
import os
import sys

missing, out = sys.argv[1].split(","), sys.argv[2]


class Missing:  # a machine without the packages named in argv[1]
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in missing:
            raise ImportError("not on this machine")


def report():
    keras = sys.modules.get("keras")
    print("BACKEND", keras and keras.backend.backend(), "TENSORFLOW", "tensorflow" in sys.modules,
          flush=True)


exit_now = os._exit
os._exit = lambda code: (report(), exit_now(code))  # the CLI ends without the teardown
sys.meta_path.insert(0, Missing())
from cnnviz.cli import main

sys.argv = ["cnnviz", "activations", "--digit", "1", "--out", out]
try:
    main()
finally:
    report()
"""


@pytest.mark.slow
@pytest.mark.one_backend  # fresh processes that choose their own backend: one stage suffices
@pytest.mark.parametrize(("missing", "requested", "config", "expected"), [
    ("tensorflow", None, None, "BACKEND jax TENSORFLOW False"),
    ("tensorflow", None, "tensorflow", "BACKEND jax TENSORFLOW False"),  # Keras's default file
    ("nothing", None, "jax", "BACKEND jax"),  # Keras's serialization loads TensorFlow, quietly
    ("tensorflow", "tensorflow", None, "KERAS_BACKEND names tensorflow but tensorflow is not "
                                       "installed: pip install 'cnnviz[tensorflow]', or use jax"),
    ("jax", None, "jax", "Keras's config file keras.json names jax but jax is not installed"),
    ("tensorflow,jax", None, None, "cnnviz needs a Keras backend: pip install "
                                   "'cnnviz[tensorflow]' (any machine) or 'cnnviz[jax]' (GPUs)"),
])
def test_the_backend_is_the_one_installed(tmp_path, missing, requested, config, expected):
    """Without KERAS_BACKEND a machine with JAX and no TensorFlow runs on JAX, and Keras's config
    file is followed where it names another backend than its default; a backend that is not
    installed is one clear line, before Keras loads."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path / "keras-home")  # not this machine's user's keras.json
    if config:
        (tmp_path / "keras-home").mkdir()
        (tmp_path / "keras-home" / "keras.json").write_text(json.dumps({"backend": config}))
    if requested:
        env["KERAS_BACKEND"] = requested
    result = subprocess.run([sys.executable, "-c", CHOICE_RUN, missing, str(tmp_path / "out")],
                            capture_output=True, text=True, env=env)
    if expected.startswith("BACKEND"):
        assert result.returncode == 0, result.stderr[-2000:]
        assert expected in result.stdout and result.stderr == ""  # no native start-up logs
        assert (tmp_path / "out" / "activations.html").exists()
    else:
        assert result.returncode != 0
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert "BACKEND None" in result.stdout and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_keras_starts_without_what_cnnviz_never_calls(backend):
    """Keras imports pyplot and IPython, and TensorFlow Lite JAX, for helpers cnnviz never calls:
    pyplot loads on its first use, IPython stays out, JAX stays out while TensorFlow loads; a
    user's own imports of them afterwards work, and Keras's gallery helper still draws."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    pytest.importorskip(backend)
    code = ("import sys; from cnnviz.core.backend import keras; k = keras(); "
            "pyplot = type(sys.modules['matplotlib.pyplot']).__name__; "
            "print(k.backend.backend(), 'jax' in sys.modules, pyplot, 'IPython' in sys.modules); "
            "import jax; print(jax.numpy.ones(2).sum()); "
            "import matplotlib.pyplot as plt; plt.switch_backend('Agg'); "
            "print(len(plt.get_fignums())); "
            "import numpy as np; "
            "k.visualization.plot_image_gallery(np.ones((2, 4, 4, 3)), path=sys.argv[1]); "
            "import IPython; print(IPython.get_ipython())")
    with tempfile.TemporaryDirectory() as scratch:
        picture = os.path.join(scratch, "gallery.png")
        result = subprocess.run([sys.executable, "-c", code, picture], capture_output=True,
                                text=True, env={**os.environ, "KERAS_BACKEND": backend})
        assert result.returncode == 0, result.stderr[-2000:]
        assert os.path.getsize(picture) > 0
    loaded_jax = "True" if backend == "jax" else "False"
    assert result.stdout.split() == [backend, loaded_jax, "_LazyModule", "False", "2.0", "0",
                                     "None"]


def test_bad_option_values_are_refused_before_the_backend_loads(tmp_path):
    """A typo never costs TensorFlow's start-up: choices, --image and --data are checked first,
    in one line, with nothing written."""
    import subprocess
    import sys
    cases = [(["explain", "--method", "gradcam,lime"], "unknown attribution method 'lime'"),
             (["explain", "--baseline", "white"], "unknown baseline 'white'"),
             (["filters", "--preset", "fancy"], "unknown preset 'fancy'"),
             (["filters", "--method", "adamw"], "unknown method 'adamw': use rms or adam"),
             (["patterns", "--values", "z"], "unknown pattern values 'z'"),
             (["activations", "--preprocess", "imagenet"], "unknown preprocessing 'imagenet'"),
             (["explain", "--image", str(tmp_path / "none.png")], "image file not found"),
             (["patterns", "--data", "mnist2"], "unknown data set 'mnist2'")]
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom cnnviz.cli import app\n"
            f"cases = {[args for args, _ in cases]!r}\n"
            "for args in cases:\n"
            f"    r = CliRunner().invoke(app, [*args, '--out', {str(tmp_path / 'out')!r}])\n"
            "    print(r.exit_code, r.stderr.strip().replace(chr(10), ' '))\n"
            "print('IMPORTED', sorted({'tensorflow', 'jax', 'keras'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    for (args, message), line in zip(cases, out, strict=False):
        assert line.startswith("1 error: ") and message in line, (args, line)
    assert out[-1] == "IMPORTED []" and not (tmp_path / "out").exists()
