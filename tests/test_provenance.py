"""Results know which model and data made them; what another model or data set made is refused
or recomputed, and said."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.core.errors import CnnvizError
from cnnviz.data.readers import ArraySource
from cnnviz.model.facts import as_facts, model_digest
from cnnviz.oip.filters import resume_filters, visualize_filters
from cnnviz.oip.settings import Settings
from cnnviz.results import FilterResult, merge


@pytest.fixture()
def twin(k, tiny_model):
    """The tiny model's twin: same name and layers, one weight changed."""
    other = k.models.clone_model(tiny_model)
    weights = [w.copy() for w in tiny_model.get_weights()]
    weights[0][0, 0, 0, 0] += 1.0
    other.set_weights(weights)
    return other


def test_digests_follow_weights_and_data(tiny_model, twin, k):
    same = k.models.clone_model(tiny_model)
    same.set_weights(tiny_model.get_weights())
    assert model_digest(same) == model_digest(tiny_model) != model_digest(twin)
    assert as_facts(tiny_model).digest == model_digest(tiny_model)
    images = np.zeros((3, 6, 6), np.uint8)
    first = ArraySource(images, np.array([0, 1, 2])).digest()
    assert ArraySource(images.copy(), np.array([0, 1, 2])).digest() == first
    assert ArraySource(images, np.array([0, 1, 1])).digest() != first
    changed = images.copy()
    changed[0, 0, 0] = 1
    assert ArraySource(changed, np.array([0, 1, 2])).digest() != first


def test_results_record_and_reload_their_provenance(tmp_path, tiny_model):
    reference = np.random.default_rng(0).integers(0, 255, (5, 6, 6), np.uint8)
    result = visualize_filters(tiny_model, "conv", [0], Settings(steps=2),
                               reference_images=reference)
    assert result.meta.model_digest == model_digest(tiny_model)
    assert result.meta.data_digest == ArraySource(reference).digest()
    result.save(tmp_path / "r.npz")
    back = FilterResult.load(tmp_path / "r.npz")
    assert back.meta.model_digest == result.meta.model_digest
    assert back.meta.data_digest == result.meta.data_digest


def _interrupted(model, reference=None) -> FilterResult:
    part = visualize_filters(model, "conv", [0], Settings(steps=2), reference_images=reference)
    part.params["requested"] = [0, 1]
    part.interrupted = True
    return part


def test_resume_refuses_another_model_of_the_same_name(tiny_model, twin):
    with pytest.raises(CnnvizError, match="made by another model 'tiny'"):
        resume_filters(twin, _interrupted(tiny_model))
    assert resume_filters(tiny_model, _interrupted(tiny_model)).filters.tolist() == [0, 1]


def test_resume_refuses_other_reference_images(tiny_model):
    reference = np.random.default_rng(1).integers(0, 255, (5, 6, 6), np.uint8)
    part = _interrupted(tiny_model, reference)
    with pytest.raises(CnnvizError, match="compared with other images"):
        resume_filters(tiny_model, part, reference_images=reference[::-1].copy())
    done = resume_filters(tiny_model, part, reference_images=reference)
    assert not done.interrupted


def test_merging_parts_of_two_models_is_refused(tiny_model, twin):
    first = visualize_filters(tiny_model, "conv", [0], Settings(steps=2))
    second = visualize_filters(twin, "conv", [1], Settings(steps=2))
    with pytest.raises(CnnvizError, match="has other weights or layers"):
        merge(first, second)


@pytest.mark.one_backend  # whole pages: the TensorFlow stage of CI runs it
def test_report_recomputes_what_another_model_made(tmp_path, tiny_model, twin):
    from cnnviz.report.build import build_report

    saved = tmp_path / "saved"
    visualize_filters(twin, "conv", None, Settings(steps=2)).save(saved / "filters.npz")
    text = build_report(tiny_model, results=saved, layer="conv", steps=2, examples=0,
                        data=ArraySource(np.zeros((4, 6, 6), np.uint8), np.array([0, 1, 2, 0])))
    assert "recomputed: filters.npz was made by another model &#x27;tiny&#x27;" in text
    own = tmp_path / "own"
    visualize_filters(tiny_model, "conv", None, Settings(steps=2)).save(own / "filters.npz")
    text = build_report(tiny_model, results=own, layer="conv", steps=2, examples=0,
                        data=ArraySource(np.zeros((4, 6, 6), np.uint8), np.array([0, 1, 2, 0])))
    assert "recomputed" not in text


def test_a_folder_digest_follows_its_files(tmp_path):
    from PIL import Image

    from cnnviz.data.readers import FolderSource

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / cls / "a.png")
    first = FolderSource(tmp_path).digest()
    assert FolderSource(tmp_path).digest() == first
    Image.new("RGB", (9, 8)).save(tmp_path / "dog" / "a.png")  # another size: another file
    assert FolderSource(tmp_path).digest() != first
