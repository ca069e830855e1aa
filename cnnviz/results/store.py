"""How results are stored: their metadata, and ``.npz`` arrays with a ``.json`` twin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.core.errors import CnnvizError
from cnnviz.core.fileio import load_results, save_results
from cnnviz.core.preprocess import Preprocess, named
from cnnviz.version import __version__


@dataclass(frozen=True)
class Meta:
    """Where a result came from: the model, the layers it covers, the data (and its class
    names), how pixels were preprocessed, the seed and the cnnviz version that made it."""

    model: str = ""
    preprocess: Preprocess = field(default_factory=lambda: named("unit"))
    layers: tuple[str, ...] = ()
    data: str | None = None
    seed: int | None = None
    version: str = __version__
    classes: tuple[str, ...] = ()
    model_digest: str = ""
    data_digest: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"model": self.model, "preprocess": self.preprocess.to_params(),
                "layers": list(self.layers), "data": self.data, "classes": list(self.classes),
                "seed": self.seed, "version": self.version, "model_digest": self.model_digest,
                "data_digest": self.data_digest}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Meta:
        """The metadata :meth:`to_json` wrote."""
        return cls(values["model"], Preprocess.from_params(values["preprocess"]),
                   tuple(values["layers"]), values.get("data"), values.get("seed"),
                   values.get("version", "?"), tuple(values.get("classes", ())),
                   values.get("model_digest", ""), values.get("data_digest", ""))

    def class_name(self, label: int) -> str:
        """The name of class ``label`` (its number where the data named none)."""
        return self.classes[label] if 0 <= label < len(self.classes) else str(label)

    def display(self, images: np.ndarray) -> np.ndarray:
        """Model inputs → display pixels (0..1, RGB order)."""
        return self.preprocess.to_unit(images)

    def same_run(self, other: Meta, what: str) -> None:
        """Refuse to merge parts of different runs (other model, layers or preprocessing)."""
        for name in ("model", "layers", "preprocess"):
            if getattr(self, name) != getattr(other, name):
                raise CnnvizError(f"cannot merge {what} of different runs: {name} "
                                  f"{getattr(self, name)!r} vs {getattr(other, name)!r}")
        if self.model_digest and other.model_digest and self.model_digest != other.model_digest:
            raise CnnvizError(f"cannot merge {what} of different runs: model '{self.model}' "
                              "has other weights or layers in one of them")

    def made_by(self, digest: str) -> bool:
        """Whether the model with ``digest`` made this result; a result that does not record
        its model (an older cnnviz's, or an edited file) was not made by it."""
        return bool(self.model_digest) and self.model_digest == digest


def save_arrays(path: str | Path, kind: str, arrays: dict[str, Any], meta: Meta,
                params: dict[str, Any], twin: bool = True, **extra: Any) -> tuple[Path, ...]:
    kept = {key: value for key, value in arrays.items() if value is not None}
    return save_results(path, kind, kept, {"meta": meta.to_json(), "params": params, **extra},
                        twin=twin)


def load_arrays(path: str | Path, kind: str) -> tuple[dict[str, np.ndarray], Meta, dict[str, Any],
                                                dict[str, Any]]:
    arrays, saved = load_results(path, kind)
    if not isinstance(saved.get("meta"), dict) or "preprocess" not in saved["meta"]:
        raise CnnvizError(f"{Path(path).with_suffix('.npz')} was saved by an older cnnviz: "
                          "compute it again")
    return arrays, Meta.from_json(saved["meta"]), saved.get("params", {}), saved


def read_result(path: str | Path, kind: str,
                build: Callable[[dict[str, np.ndarray], Meta, dict[str, Any], dict[str, Any]],
                                Any], rows: tuple[str, ...] = (),
                whole: tuple[str, ...] = ()) -> Any:
    """A saved result of ``kind`` built by ``build(arrays, meta, params, saved)``; a damaged
    file, or one that is not cnnviz's, is one clear error, whatever part of it is wrong. The
    arrays whose names start with one of ``rows`` hold one row per item (filter, input,
    class) and must agree on how many: an array cut short is refused, not drawn; those named
    in ``whole`` (indices, labels, counts) must hold whole numbers."""
    try:
        loaded = load_arrays(path, kind)
        text = [name for name, value in loaded[0].items() if value.dtype.kind not in "biuf"
                or (name in whole and value.dtype.kind not in "biu")]
        if text:
            raise CnnvizError(f"{Path(path).with_suffix('.npz')} is damaged: its '{text[0]}' "
                              f"holds {loaded[0][text[0]].dtype} values, not "
                              f"{'whole ' if text[0] in whole else ''}numbers; compute it again")
        counts = {name: len(np.atleast_1d(value)) for name, value in loaded[0].items()
                  if name.startswith(rows) and rows}
        if len(set(counts.values())) > 1:
            short = min(counts, key=counts.get)
            longest = max(counts, key=counts.get)
            raise CnnvizError(f"{Path(path).with_suffix('.npz')} is damaged: its '{short}' "
                              f"holds {counts[short]} rows, its '{longest}' {counts[longest]}; "
                              "compute it again")
        return build(*loaded)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CnnvizError(f"cannot read saved results {Path(path).with_suffix('.npz')}: they are "
                          f"damaged or not cnnviz's ({type(exc).__name__}: {exc}); compute them "
                          "again") from None


def numbered(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"conv": a, "pool": b}`` → ``{"map_0": a, "map_1": b}``: npz keys that any layer or
    method name fits (names go to the JSON, in order)."""
    return {f"{prefix}_{i}": value for i, value in enumerate(arrays.values())}


def named_arrays(prefix: str, data: dict[str, np.ndarray],
                 names: list[str]) -> dict[str, np.ndarray]:
    """What :func:`numbered` wrote, under its names again."""
    return {name: data[f"{prefix}_{i}"] for i, name in enumerate(names)}


def stacked(first: dict[str, np.ndarray], second: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
    """Per key, the first part's rows followed by the second's."""
    return {name: np.concatenate([first[name], second[name]]) for name in first}


def joined(parts: list[Any], name: str) -> np.ndarray | None:
    values = [getattr(p, name) for p in parts]
    return None if any(v is None for v in values) else np.concatenate(values)
