"""The parts of a job (an atlas, filters, class patterns) on a Ray cluster (an optional extra:
``pip install -e '.[ray]'``): one worker per GPU where the cluster has GPUs, else one per CPU,
each holding the work — model, data and settings — so its compiled steps are traced once per
worker, not once per part. Every part is computed by the function the in-process run uses, so
the parts are the same; the driver saves each as it finishes, so an interrupted cluster run
continues like any other."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from cnnviz.core.backend import START_ENV
from cnnviz.core.errors import CnnvizError
from cnnviz.parts.engine import Part, Work


class _Worker:
    """Holds a job's work (the model, the data and the settings); computes the parts it is
    given."""

    def __init__(self, work: Work) -> None:
        self.work = work

    def compute(self, part: Part, resume: Any = None) -> Any:
        if resume is None:
            return self.work.compute(part)
        return self.work.compute(part, resume=resume)


class RayRunner:
    """Runs the parts on Ray: ``address`` ``auto`` (the cluster ``RAY_ADDRESS`` names, else
    a new local one), ``local`` (a new local one with ``cpus`` CPUs) or a cluster's address
    (``ray://head:10001``); ``workers`` overrides how many workers share it."""

    def __init__(self, address: str = "auto", cpus: int | None = None,
                 workers: int | None = None) -> None:
        self.address, self.cpus, self.workers = address, cpus, workers

    def run(self, work: Work, todo: list[Part], progress: Any, partial: Any = None,
            resumes: dict[Part, Any] | None = None) -> Iterator[tuple[Part, Any]]:
        """Each part with its result, as the cluster finishes it (a part's own partial
        values stay in its worker: a cluster's checkpoints are the parts finished)."""
        if not todo:
            return
        try:
            import ray
        except ImportError:
            raise CnnvizError("--ray needs Ray: pip install 'cnnviz[ray]' (or pip install "
                              "ray)") from None
        started = not ray.is_initialized()
        if started:
            self._start(ray)
        running: dict[Any, tuple[Any, Part]] = {}
        pool: list[Any] = []
        try:
            resources = ray.cluster_resources()
            gpus = int(resources.get("GPU", 0))
            count = self.workers or gpus or max(1, int(resources.get("CPU", 1)))
            share = 1.0 if gpus else max(1.0, resources.get("CPU", 1) / count)
            worker = ray.remote(num_gpus=1 if gpus else 0, num_cpus=share)(_Worker)
            shared = ray.put(work)
            pool = [worker.remote(shared) for _ in range(min(count, len(todo)))]
            queue = list(todo)

            def submit(actor: Any) -> None:
                part = queue.pop(0)
                resume = (resumes or {}).get(part)
                running[actor.compute.remote(part, resume)] = (actor, part)

            for actor in pool:
                submit(actor)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                actor, part = running.pop(ready[0])
                try:
                    value = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    raise exc.as_instanceof_cause() from None
                if queue:
                    submit(actor)
                yield part, value
        finally:
            for actor in pool:  # stops what still runs, when the driver stops early
                ray.kill(actor)
            if started:
                ray.shutdown()

    def _start(self, ray: Any) -> None:
        # The workers compute as this process does: the same TensorFlow start-up and as many
        # OpenMP threads (oneDNN sums in another order with fewer, and an ascent amplifies
        # the last bits; Ray would give each worker one thread per CPU it reserves).
        env = {**START_ENV, "OMP_NUM_THREADS": str(os.cpu_count() or 1),
               **{k: os.environ[k] for k in (*START_ENV, "KERAS_BACKEND", "OMP_NUM_THREADS")
                  if k in os.environ}}
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": "ERROR", "runtime_env": {"env_vars": env}}
        if self.address == "local":
            ray.init(num_cpus=self.cpus, **options)
        else:
            ray.init(address=None if self.address == "auto" else self.address, **options)
