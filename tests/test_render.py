import re

import numpy as np
import pytest
from PIL import Image
from plotly_page import figures

from cnnviz.core.errors import CnnvizError
from cnnviz.render import figures as builders
from cnnviz.render import grids
from cnnviz.render import page as html_page
from cnnviz.render.tiles import grid_shape, mosaic, normalize_each


def test_grid_shape():
    assert grid_shape(32) == (6, 6)
    assert grid_shape(128) == (11, 12)
    assert grid_shape(3) == (2, 2)
    assert grid_shape(5, columns=10) == (1, 5)
    with pytest.raises(CnnvizError):
        grid_shape(0)


def test_mosaic_layout():
    maps = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    z, where, corners = mosaic(maps, gap=1)
    assert z.shape == (5, 5) and corners == [(0, 0), (0, 3), (3, 0)]
    np.testing.assert_array_equal(z[0:2, 0:2], maps[..., 0])
    np.testing.assert_array_equal(z[0:2, 3:5], maps[..., 1])
    np.testing.assert_array_equal(z[3:5, 0:2], maps[..., 2])
    assert np.isnan(z[2]).all() and np.isnan(z[:, 2]).all() and np.isnan(z[3:, 3:]).all()
    assert where[4, 1].tolist() == [2, 1, 1] and where[2, 2].tolist() == [-1, -1, -1]
    assert int(np.isfinite(z).sum()) == maps.size


def test_normalize_each():
    maps = np.stack([np.array([[1.0, 3.0], [2.0, 5.0]]), np.full((2, 2), 7.0)], axis=-1)
    out = normalize_each(maps)
    np.testing.assert_allclose(out[..., 0], [[0, 0.5], [0.25, 1]])
    np.testing.assert_array_equal(out[..., 1], 0.0)


@pytest.mark.parametrize("scale", ["shared", "per-map"])
def test_map_grid_has_one_labelled_tile_per_map(tmp_path, scale):
    maps = np.random.default_rng(0).random((5, 5, 10))
    fig = grids.map_grid(maps, title="layer", scale=scale)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert labels == [str(i) for i in range(10)]
    image = ax.images[0].get_array()
    assert int(np.isfinite(image.filled(np.nan)).sum()) == 5 * 5 * 10
    assert len(fig.axes) == 2  # the grid and its colour bar
    limits = ax.images[0].get_clim()
    assert limits == ((maps.min(), maps.max()) if scale == "shared" else (0.0, 1.0))
    path = grids.save_png(fig, tmp_path / "grid.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 200
    with pytest.raises(CnnvizError, match="unknown scale"):
        grids.map_grid(maps, scale="log")


def test_layer_maps_figure_and_page():
    rng = np.random.default_rng(1)
    layers = {"conv": rng.random((4, 4, 3)), "pool": rng.random((2, 2, 3))}
    fig = builders.layer_maps_figure(layers)
    assert [t.name for t in fig.data] == ["conv", "pool"]
    assert [t.visible for t in fig.data] == [True, False]
    assert "map %{customdata[0]}" in fig.data[0].hovertemplate
    assert np.asarray(fig.data[0].customdata).shape == (*np.asarray(fig.data[0].z).shape, 3)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["conv", "pool"]
    assert buttons[1].args[0] == {"visible": [False, True]}
    assert len(fig.layout.annotations) == 3
    page = html_page.page("Test page", [("Maps", fig)], intro="intro <b>")
    assert page.count("<script") == 2  # plotly.js inline, then the figure
    assert not re.search(r"<script[^>]*\ssrc=|<link[^>]*href=", page)  # nothing fetched
    assert "intro &lt;b&gt;" in page
    specs = figures(page)
    assert len(specs) == 1 and [t["name"] for t in specs[0]["data"]] == ["conv", "pool"]


def test_input_figure_shows_prediction():
    probabilities = np.array([0.1, 0.7, 0.2])
    fig = builders.input_figure(np.zeros((4, 4, 1)), probabilities, label=1)
    assert [t.type for t in fig.data] == ["heatmap", "bar"]
    assert list(fig.data[1].y) == [0.1, 0.7, 0.2]
    assert fig.layout.annotations[1].text == "predicted 1 (70.0%)"
    rgb = builders.input_figure(np.zeros((4, 4, 3)), probabilities)
    assert rgb.data[0].type == "image"
    png = grids.input_figure(np.zeros((4, 4, 1)), probabilities, label=1)
    assert png.axes[1].get_title() == "predicted 1 (70.0%)"


def test_gallery_sheet_draws_each_image_pixel_for_pixel(tmp_path):
    from cnnviz.render import sheet

    images = np.array([[[0.0, 1.0], [0.5, np.nan]], [[1.0, 1.0], [0.0, 0.0]]])[..., None]
    drawn = sheet.image_gallery(4 * images - 2, ["0: 1.00", "1: 0.00 dead"],
                                value_range=(-2.0, 2.0), title="layer: 2 filters",
                                flagged=[False, True])
    path = grids.save_png(drawn, tmp_path / "g.png")
    with Image.open(path) as png:
        pixels = np.asarray(png.convert("RGB")).astype(int)
    zoom = sheet.TILE // 2  # 2-pixel images: zoomed 56×, no resampling
    assert pixels.shape[1] == 2 * sheet.MARGIN + 2 * (2 * zoom + sheet.GAP) - sheet.GAP
    frame = np.all(pixels == sheet.FRAME, axis=-1)
    tops, lefts = np.nonzero(frame[:, :sheet.MARGIN + 1])[0].min() + 1, [sheet.MARGIN]
    lefts.append(sheet.MARGIN + 2 * zoom + sheet.GAP)
    for image, left in zip(images, lefts, strict=True):
        for (r, c), value in np.ndenumerate(image[..., 0]):
            block = pixels[tops + r * zoom:tops + (r + 1) * zoom,
                           left + c * zoom:left + (c + 1) * zoom]
            expected = 255 if np.isnan(value) else round(255 * value)
            assert (block == expected).all(), (r, c)
    assert frame[tops - 1, lefts[0]:lefts[0] + 2 * zoom].all()  # the hairline frame
    label_rows = pixels[tops - sheet.LABEL_PX - 4:tops - 1]
    red = (label_rows[..., 0] > 150) & (label_rows[..., 1] < 80)
    assert not red[:, :lefts[1] - 2].any() and red[:, lefts[1]:].any()  # only the flagged one
    assert (pixels[:tops - sheet.LABEL_PX - 6, :sheet.MARGIN] == 255).all()


def test_gallery_sheet_fits_labels_big_images_and_refuses_bad_shapes():
    from cnnviz.render import sheet

    font = sheet._font(sheet.LABEL_PX)
    cut = sheet._fitted("a label far too long for its tile", font, 60)
    assert cut.endswith("…") and font.getlength(cut) <= 60
    assert sheet._fitted("short", font, 60) == "short"
    wide = sheet.image_gallery(np.zeros((64, 300, 300, 3)), [str(i) for i in range(64)],
                               value_range=(0.0, 1.0), columns=16)
    assert wide.size[0] <= sheet.MAX_WIDTH
    titled = sheet.image_gallery(np.zeros((1, 4, 4, 1)), ["a $ b"], value_range=(0.0, 1.0),
                                 title="a title far wider than one small tile\x1b[2J")
    assert titled.size[0] > sheet.TILE + 2 * sheet.MARGIN
    with pytest.raises(CnnvizError, match="1 or 3"):
        sheet.image_gallery(np.zeros((1, 4, 4, 2)), ["a"], value_range=(0.0, 1.0))
    with pytest.raises(CnnvizError, match="2 labels for 1 images"):
        sheet.image_gallery(np.zeros((1, 4, 4, 1)), ["a", "b"], value_range=(0.0, 1.0))


def test_a_thousand_classes_show_their_strongest_bars():
    """ImageNet's 1,000 classes would be an unreadable smear of ticks: past 20 classes the bars
    are the 10 strongest, in order, with their names."""
    from cnnviz.render.outputs import output_bars

    scores = np.linspace(0.0, 1.0, 1000)
    scores[685] = 2.0
    bars = output_bars(scores, tuple(f"class {i}" for i in range(1000)))
    assert bars.names[:3] == ["class 685", "class 999", "class 998"] and len(bars.names) == 10
    assert bars.highlight == 0 and bars.title == "largest: class 685 (2)"
    np.testing.assert_array_equal(bars.values, np.sort(scores)[::-1][:10])
    few = output_bars(np.array([0.2, 0.5, 0.3]))
    assert few.names == ["0", "1", "2"] and few.highlight == 1
