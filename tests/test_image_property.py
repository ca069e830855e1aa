"""Property tests: whatever array or image file arrives, the loader gives a model input of the
right shape and range, or one clear CnnvizError."""

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from cnnviz.core.errors import CnnvizError
from cnnviz.data import read_image, to_model_input, to_unit_range

DTYPES = st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64,
                          np.bool_])
SHAPES = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
    st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 5)))
TARGETS = st.sampled_from([(28, 28, 1), (12, 20, 3), (5, 5, 1)])
RANGES = st.sampled_from([(0.0, 1.0), (0.0, 255.0), (-1.0, 1.0)])


def _arrays(draw):
    dtype = draw(DTYPES)
    elements = None
    if np.issubdtype(dtype, np.floating):
        elements = st.floats(-1e6, 1e6, allow_nan=False, width=32)
    return draw(hnp.arrays(dtype, draw(SHAPES), elements=elements))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), target=TARGETS, value_range=RANGES)
def test_any_array_becomes_a_valid_input_or_a_clear_error(data, target, value_range):
    array = _arrays(data.draw)
    try:
        out = to_model_input(to_unit_range(array), target, value_range)
    except CnnvizError as exc:
        assert array.ndim == 3 and array.shape[-1] == 5, exc  # only 5-channel arrays refused
        return
    assert out.shape == target and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= value_range[0] - 1e-4 and out.max() <= value_range[1] + 1e-4


@settings(max_examples=40, deadline=None)
@given(side=st.tuples(st.integers(1, 64), st.integers(1, 64)),
       mode=st.sampled_from(["L", "I;16", "RGB", "RGBA", "LA", "P", "1"]),
       seed=st.integers(0, 2**16))
@example(side=(3, 2), mode="LA", seed=0)  # imageio read this one as 2×2×3
def test_image_files_of_any_mode(tmp_path_factory, side, mode, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("img") / "image.png"
    height, width = side
    if mode == "I;16":
        picture = Image.fromarray(rng.integers(0, 65535, (height, width)).astype(np.uint16))
    else:
        picture = Image.fromarray(rng.integers(0, 255, (height, width, 3)).astype(np.uint8))
        picture = picture.convert(mode)
    picture.save(path)
    try:
        pixels = read_image(path)
    except CnnvizError as exc:
        assert min(side) < 2 and "too small" in str(exc)
        return
    assert pixels.shape[:2] == (height, width)
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    out = to_model_input(pixels, (28, 28, 1), (0.0, 255.0))
    assert out.shape == (28, 28, 1) and out.min() >= 0.0 and out.max() <= 255.0
