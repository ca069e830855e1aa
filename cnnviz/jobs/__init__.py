"""What each command does, as one library call: compute, write the files into the output folder
(never over an earlier run's without ``force``) and say what happened. The command line parses
its options, calls one of these and prints the :class:`Outcome`."""

from cnnviz.jobs.atlas import atlas_job
from cnnviz.jobs.common import InputSpec, Outcome, choose_input
from cnnviz.jobs.evolution import evolution_job
from cnnviz.jobs.explain import explain_job
from cnnviz.jobs.filters import (
    AscentSpec,
    filters_job,
    redraw_filters_job,
    resume_filters_job,
    start_input,
)
from cnnviz.jobs.layers import LayerTable, layers_job
from cnnviz.jobs.maps import activations_job, kernels_job, patterns_job
from cnnviz.jobs.site import gallery_job, report_job
from cnnviz.jobs.train import TrainProgressFn, train_job

__all__ = ["AscentSpec", "InputSpec", "LayerTable", "Outcome", "TrainProgressFn",
           "activations_job", "atlas_job", "choose_input", "evolution_job", "explain_job",
           "filters_job",
           "gallery_job", "kernels_job", "layers_job", "patterns_job", "redraw_filters_job",
           "report_job", "resume_filters_job", "start_input", "train_job"]
