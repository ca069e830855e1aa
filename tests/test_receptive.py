"""Receptive fields computed from the graph, and maps placed along them."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.model.receptive import receptive_field, receptive_fields, upsample


def test_reference_cnn_fields(reference_model):
    fields = receptive_fields(reference_model)
    got = {name: (f.size, f.stride, f.rows.start if f.rows else None)
           for name, f in fields.items()}
    assert got["conv2d_1"] == ((3, 3), (1, 1), 1.0)
    assert got["max_pooling2d_1"] == ((4, 4), (2, 2), 1.5)
    assert got["conv2d_2"] == ((8, 8), (2, 2), 3.5)
    assert got["conv2d_3"] == ((18, 18), (4, 4), 8.5)
    assert fields["dense_2"].whole and fields["dense_2"].describe() == ("all", "")
    # The three units of conv2d_3 are centred on pixels 8.5, 12.5 and 16.5.
    np.testing.assert_allclose(fields["conv2d_3"].rows.centre(np.arange(3)), [8.5, 12.5, 16.5])


def test_same_padding_strides_dilation_and_nesting(k):
    inner = k.Sequential([k.layers.Conv2D(2, 3, dilation_rate=2, name="dil"),
                          k.layers.ZeroPadding2D(((1, 0), (0, 0)), name="pad")], name="base")
    inputs = k.Input((15, 15, 1))
    x = inner(inputs)
    x = k.layers.Conv2D(2, 3, strides=2, padding="same", name="strided")(x)
    x = k.layers.BatchNormalization(name="bn")(x)
    model = k.Model(inputs, x)
    fields = receptive_fields(model)
    dil = fields["base/dil"]  # taps 2 apart: 5 pixels, centred on pixel 2
    assert (dil.size, dil.rows.start, dil.rows.n) == ((5, 5), 2.0, 11)
    pad = fields["base/pad"]  # one padded row on top: unit 0 is now centred one pixel earlier
    assert (pad.rows.start, pad.rows.n, pad.cols.start) == (1.0, 12, 2.0)
    assert fields["base"] == pad
    # "same" with stride 2 on 12 rows pads 1 in total, 0 before: centred one row past 1.
    strided = fields["strided"]
    assert strided.size == (7, 7) and strided.stride == (2, 2)
    assert strided.rows.start == pytest.approx(2.0) and strided.rows.n == 6
    # 11 columns: 'same' pads 2 in total, 1 before: unit 0 centred on input column 2.
    assert strided.cols.start == pytest.approx(2.0) and strided.cols.n == 6
    assert fields["bn"] == strided


def test_any_size_model_uses_the_given_size(k):
    model = k.Sequential([k.Input((None, None, 3)), k.layers.Conv2D(2, 3, strides=2,
                                                                     padding="same",
                                                                     name="c")])
    assert receptive_field(model, "c", (9, 10)).rows.n == 5
    assert receptive_field(model, "c", (9, 10)).cols.n == 5
    # 10 columns, stride 2, kernel 3: 'same' pads 1 in total, 0 before → centre at 1.
    assert receptive_field(model, "c", (9, 10)).cols.start == 1.0
    # 9 rows: pads 2 in total, 1 before → centre at 0.
    assert receptive_field(model, "c", (9, 10)).rows.start == 0.0


def test_upsample_places_values_at_field_centres(reference_model):
    field = receptive_field(reference_model, "conv2d_3")
    maps = np.zeros((1, 3, 3))
    maps[0, 1, 2] = 1.0
    up = upsample(maps, field, (28, 28))
    assert up.shape == (1, 28, 28)
    # Rows: the middle unit is centred on 12.5, so rows 12 and 13 get 7/8 of it; columns: the
    # last unit is centred on 16.5, column 16 gets 7/8 and the columns past it all of it.
    assert up[0, 12, 16] == pytest.approx(0.875 * 0.875)
    np.testing.assert_allclose(up[0, 13, 17:], 0.875)
    assert up[0].max() == pytest.approx(0.875)
    assert up[0, :4].max() == 0.0 and up[0, :, :8].max() == 0.0  # far rows and columns stay 0
