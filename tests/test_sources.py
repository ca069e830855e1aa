"""Data sources: arrays, folders, .npz, iterables and tfds, streamed in batches."""

import numpy as np
import pytest
from PIL import Image

from cnnviz.core.errors import CnnvizError
from cnnviz.data.images import decode
from cnnviz.data.readers import ArraySource, FolderSource, IterableSource, prefetched
from cnnviz.data.sources import data_for, open_source
from cnnviz.maps.activations import top_examples
from cnnviz.maps.patterns import class_patterns


def _folder(root, classes=("cat", "dog"), per_class=3, flat=False):
    """Images whose pixel value encodes (class, index), in sizes that differ."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        folder = root if flat else root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = int(rng.integers(8, 20))
            value = 40 * c + 10 * i + 5
            Image.fromarray(np.full((side, side + 3, 3), value, np.uint8)).save(
                folder / f"{name}_{i}.png")
    return root


def test_array_source_streams_exact_pixels_and_converts_sizes():
    x = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)
    source = ArraySource(x, np.array([0, 1, 1, 0, 2]))
    assert len(source) == 5 and source.class_names == ("0", "1", "2") and source.labelled
    batches = list(source.batches((4, 4, 1), batch_size=2))
    assert [len(b) for b, _ in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b for b, _ in batches])[..., 0], x)
    assert batches[0][0].dtype == np.uint8  # as stored: exact
    big, labels = source.gather([4, 0], (8, 8, 3))
    assert big.shape == (2, 8, 8, 3) and labels.tolist() == [2, 0] and big.max() <= 1.0
    with pytest.raises(CnnvizError, match="index 9 is outside arrays"):
        source.gather([9], None)
    with pytest.raises(CnnvizError, match="3 images but 2 labels"):
        ArraySource(x[:3], np.array([0, 1]))


def test_folder_source_reads_class_subfolders_like_keras(tmp_path):
    source = FolderSource(_folder(tmp_path / "data"))
    assert source.class_names == ("cat", "dog") and len(source) == 6
    assert source.labels().tolist() == [0, 0, 0, 1, 1, 1]
    pixels = np.concatenate([b for b, _ in source.batches((5, 6, 3), batch_size=4)])
    assert pixels.shape == (6, 5, 6, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[:, 0, 0, 0], [5, 15, 25, 45, 55, 65])
    own, labels = source.gather([4], None)
    assert labels.tolist() == [1] and own.shape[-1] == 3 and own.shape[1:3] != (5, 6)
    grey = decode(source.files[0], (4, 4, 1))
    assert grey.shape == (4, 4, 1) and int(grey[0, 0, 0]) == 5


def test_flat_folder_is_unlabelled(tmp_path, tiny_model):
    source = FolderSource(_folder(tmp_path / "flat", flat=True))
    assert not source.labelled and source.labels() is None and len(source) == 6
    with pytest.raises(CnnvizError, match="has no labels"):
        class_patterns(tiny_model, source, None, "conv")
    with pytest.raises(CnnvizError, match="holds no images"):
        FolderSource((tmp_path / "empty").mkdir() or tmp_path / "empty")


def test_prefetch_keeps_order_and_bounds_work_in_flight():
    started = []

    def task(i):
        def run():
            started.append(i)
            return np.full((1, 1, 1, 1), i), None
        return run

    out = prefetched((task(i) for i in range(20)), workers=2, ahead=3)
    first = next(out)
    assert int(first[0].ravel()[0]) == 0 and len(started) <= 4  # not all twenty at once
    assert [int(b.ravel()[0]) for b, _ in out] == list(range(1, 20))


def test_iterables_and_one_shot_generators(tiny_model):
    x = np.random.default_rng(1).integers(0, 256, (9, 6, 6), dtype=np.uint8)
    y = np.arange(9) % 3
    batches = [(x[i:i + 4], y[i:i + 4]) for i in range(0, 9, 4)]
    whole = class_patterns(tiny_model, x, y, "conv")
    streamed = class_patterns(tiny_model, IterableSource(lambda: iter(batches)), None, "conv")
    np.testing.assert_allclose(streamed.means["conv"], whole.means["conv"], rtol=1e-6)
    assert streamed.counts.tolist() == [3, 3, 3] and streamed.params["images"] == 9
    generator = open_source(b for b in batches)
    top_examples(tiny_model, "conv", generator, k=2)
    with pytest.raises(CnnvizError, match="can be read once"):
        top_examples(tiny_model, "conv", generator, k=2)


def test_npz_class_names_and_the_default_data_rule(tmp_path):
    np.savez(tmp_path / "pets.npz", x=np.zeros((4, 6, 6, 3), np.uint8), y=np.array([0, 1, 1, 0]),
             class_names=np.array(["cat", "dog"]))
    source = open_source(tmp_path / "pets.npz")
    assert source.class_names == ("cat", "dog") and source.labels().tolist() == [0, 1, 1, 0]
    assert data_for((28, 28, 1)).name == "mnist-sample test"
    assert data_for((32, 32, 3)) is None and data_for((None, None, 3)) is None
    assert data_for((32, 32, 3), tmp_path / "pets.npz").class_names == ("cat", "dog")
    with pytest.raises(CnnvizError, match="data not found"):
        open_source(str(tmp_path / "nowhere") + "/")
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 6, 6)), y=np.array([0, 2]),
             class_names=np.array(["a", "b"]))
    with pytest.raises(CnnvizError, match="label 2 is not a class number 0..1"):
        open_source(tmp_path / "bad.npz")


def test_tfds_source_reads_a_locally_built_dataset(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))

    class CnnvizTinyShapes(tfds.core.GeneratorBasedBuilder):
        """Three grey squares of each of two classes, built here: nothing is downloaded."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(6, 6, 1)),
                "label": tfds.features.ClassLabel(names=["dark", "light"])}),
                supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            return {"test": self._generate_examples()}

        def _generate_examples(self):
            for i in range(6):
                yield i, {"image": np.full((6, 6, 1), 40 * i, np.uint8), "label": i % 2}

    CnnvizTinyShapes(data_dir=str(tmp_path)).download_and_prepare()
    source = open_source("tfds:cnnviz_tiny_shapes:test")
    assert source.class_names == ("dark", "light") and source.labelled
    pixels = np.concatenate([b for b, _ in source.batches((6, 6, 1))])
    assert sorted(pixels[:, 0, 0, 0].tolist()) == [0, 40, 80, 120, 160, 200]
    assert source.labels().tolist() == [int(v) // 40 % 2 for v in pixels[:, 0, 0, 0]]


def test_a_tf_data_dataset_is_a_source(tiny_model):
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(4).integers(0, 256, (10, 6, 6, 1), dtype=np.uint8)
    y = np.arange(10) % 2
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    streamed = class_patterns(tiny_model, dataset, None, "conv", class_names=("a", "b"))
    whole = class_patterns(tiny_model, x, y, "conv")
    np.testing.assert_allclose(streamed.means["conv"], whole.means["conv"], rtol=1e-6)
    assert streamed.class_names == ("a", "b")
    index, _ = top_examples(tiny_model, "conv", dataset, k=3)  # a second pass works
    assert index.shape == (2, 3)


def test_one_idea_of_data_a_data_set_is_a_source_with_splits(tmp_path):
    """A data set is a source (its test split) that gives either split; every reader takes
    it as it takes any source, and a source without splits says so for train."""
    from cnnviz.data import Dataset, as_source, load_mnist, select_input

    rng = np.random.default_rng(0)
    toy = Dataset("toy", rng.integers(0, 256, (5, 6, 6), dtype=np.uint8), np.arange(5) % 2,
                  rng.integers(0, 256, (3, 6, 6), dtype=np.uint8), np.array([1, 0, 1]),
                  ("even", "odd"))
    assert toy.splits == ("train", "test") and toy.title == "toy" and len(toy) == 3
    assert as_source(toy) is toy is open_source(toy) is toy.split("test")
    train = open_source(toy, "train")
    assert len(train) == 5 and train.name == "toy train" and train.labels().tolist() == [
        0, 1, 0, 1, 0] and train.class_names == ("even", "odd")
    np.testing.assert_array_equal(train.gather([2], None)[0][0, ..., 0], toy.x_train[2])
    assert open_source("bundled", "train").name == "mnist-sample train"
    assert load_mnist().digest() == open_source("bundled").digest()
    folder = FolderSource(_folder(tmp_path / "data"))
    assert folder.split("test") is folder
    with pytest.raises(CnnvizError, match="data has no train split"):
        open_source(tmp_path / "data", "train")
    with pytest.raises(CnnvizError, match="unknown split 'dev': use train or test"):
        toy.split("dev")
    chosen = select_input((6, 6, 1), index=1, dataset=toy)
    assert chosen.label == 0 and chosen.class_name == "even" and chosen.source == "toy test " \
        "image 1"


def test_no_digit_is_upscaled_for_a_model_that_does_not_take_them():
    from cnnviz.data import select_input

    assert select_input((28, 28, 1), digit=4).label == 4
    with pytest.raises(CnnvizError, match="the input is missing: the model takes 32×32×3 "
                                          "images, not the bundled 28×28×1 digits"):
        select_input((32, 32, 3), digit=4)


def test_links_that_loop_and_empty_images_in_a_folder(tmp_path, tiny_model):
    """A link back up the folder is not followed into the data again (no class gets another's
    images); a link to itself is passed over; an empty image is named, whichever reader
    decodes it."""
    root = _folder(tmp_path / "data")
    (root / "cat" / "up").symlink_to(root, target_is_directory=True)
    (root / "dog" / "self").symlink_to(root / "dog" / "self")
    source = FolderSource(root)
    assert len(source) == 6 and source.labels().tolist() == [0, 0, 0, 1, 1, 1]
    (root / "dog" / "dog_1.png").write_bytes(b"")
    empty = FolderSource(root)
    with pytest.raises(CnnvizError, match="dog_1.png: the file is empty"):
        list(empty.batches((6, 6, 1), batch_size=4))
    with pytest.raises(CnnvizError, match="dog_1.png: the file is empty"):
        empty.gather([4], None)
