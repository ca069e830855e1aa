"""What each command does, as one library call: compute, write the files into the output folder
(never over an earlier run's without ``force``) and say what happened. The command line parses
its options, calls one of these and prints the :class:`Outcome`."""

from cnnviz.core.lazy import lazy_exports

# Each name from its own module, loaded on first use: a command loads only its own job's code
# (the atlas's, with its cluster runner, took 0.16 s of every command).
_HOMES = {
    "atlas_job": "atlas",
    "InputSpec": "common", "Outcome": "common", "choose_input": "common",
    "evolution_job": "evolution",
    "explain_job": "explain",
    "AscentSpec": "filters", "filters_job": "filters", "redraw_filters_job": "filters",
    "resume_filters_job": "filters", "start_input": "filters",
    "LayerTable": "layers", "layers_job": "layers",
    "activations_job": "maps", "kernels_job": "maps", "patterns_job": "maps",
    "gallery_job": "site", "report_job": "site",
    "TrainProgressFn": "train", "train_job": "train", "resume_train_job": "train",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, {name: f"cnnviz.jobs.{home}"
                                               for name, home in _HOMES.items()})
