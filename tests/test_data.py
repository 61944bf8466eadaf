"""Does cnncourse.data read IDX files, serve Fashion-MNIST batches and find the raw files as
documented?

Most tests write small IDX files of their own into ``tmp_path``; one ``data``-marked test reads
the real Fashion-MNIST and is skipped when it is absent.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cnncourse import data

# IDX type codes (the third byte of the magic number) for the dtypes these tests write
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
          np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` in the IDX format: magic, big-endian sizes, big-endian data."""
    big = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    header = bytes([0, 0, _CODES[big.dtype], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + big.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def fake_fashion_mnist(folder: Path, num_train: int = 100, num_val: int = 40,
                       seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write the four .gz files of a small random Fashion-MNIST into ``folder``."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", num_train), ("val", num_val)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images_file, labels_file = data.FILES[split]
        write_idx(folder / images_file, images)
        write_idx(folder / labels_file, labels)
        arrays[split] = (images, labels)
    return arrays


@pytest.fixture
def small_dataset(tmp_path: Path):
    """A data root holding a 100/40-example Fashion-MNIST look-alike: (root, arrays)."""
    arrays = fake_fashion_mnist(tmp_path / "FashionMNIST" / "raw")
    return tmp_path, arrays


@pytest.fixture(autouse=True)
def full_mode(monkeypatch):
    """Every test starts outside reduced mode, whatever the shell running pytest set."""
    monkeypatch.delenv("CNN_QUICK", raising=False)


# --- read_idx -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_does_read_idx_return_what_was_written(tmp_path: Path, dtype, suffix: str):
    native = np.dtype(dtype).newbyteorder("=")
    offset = 0 if native.kind == "u" else 5  # negative values where the type allows them
    array = (np.arange(24).reshape(2, 3, 4) - offset).astype(native)
    result = data.read_idx(write_idx(tmp_path / f"a-idx3-ubyte{suffix}", array))
    assert result.shape == (2, 3, 4)
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_does_read_idx_reject_a_file_with_a_bad_magic_number(tmp_path: Path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(b"\x01\x02\x08\x01" + bytes(8)))
    with pytest.raises(ValueError, match=r"labels\.gz.*not an IDX file.*01020801"):
        data.read_idx(path)


def test_does_read_idx_name_the_size_of_a_truncated_file(tmp_path: Path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-10]))
    expected = r"images\.gz: 3926 bytes, expected 3936 for shape \(5, 28, 28\)"
    with pytest.raises(ValueError, match=expected):
        data.read_idx(path)


def test_does_read_idx_reject_an_empty_file(tmp_path: Path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(path)


def test_does_load_split_refuse_images_and_labels_of_different_lengths(small_dataset, tmp_path):
    root, _ = small_dataset
    write_idx(root / "FashionMNIST" / "raw" / data.FILES["val"][1], np.zeros(39, np.uint8))
    with pytest.raises(ValueError, match="do not match"):
        data.load_split("val", root, download=False)


# --- FashionMNIST -------------------------------------------------------------------------
def test_are_the_batches_shaped_and_scaled_like_d2l(small_dataset):
    root, arrays = small_dataset
    fm = data.FashionMNIST(batch_size=16, root=root, download=False)
    assert (len(fm.train), len(fm.val)) == (100, 40)
    batches = list(fm.train_dataloader())
    assert len(batches) == len(fm.train_dataloader()) == 7  # ceil(100 / 16)
    X, y = batches[0]
    assert X.shape == (16, 1, 28, 28) and X.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert batches[-1][0].shape[0] == 100 - 6 * 16
    X_val, y_val = next(iter(fm.val_dataloader()))  # validation keeps the file order
    images, labels = arrays["val"]
    torch.testing.assert_close(X_val[:, 0], torch.from_numpy(images[:16]).float() / 255)
    assert torch.equal(y_val, torch.from_numpy(labels[:16]).long())


def test_does_every_epoch_see_every_training_example_once(small_dataset):
    root, arrays = small_dataset
    fm = data.FashionMNIST(batch_size=32, root=root, download=False)
    loader = fm.train_dataloader()
    epochs = [torch.cat([y for _, y in loader]) for _ in range(2)]
    expected = np.sort(arrays["train"][1])
    for labels in epochs:
        assert np.array_equal(np.sort(labels.numpy()), expected)
    assert not torch.equal(epochs[0], epochs[1]), "the training order should change each epoch"


def test_does_the_same_seed_give_the_same_order(small_dataset):
    root, _ = small_dataset
    first = [torch.cat([y for _, y in data.FashionMNIST(root=root, download=False, seed=s)
                        .train_dataloader()]) for s in (3, 3, 4)]
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])


def test_does_resize_change_only_the_image_side(small_dataset):
    root, _ = small_dataset
    fm = data.FashionMNIST(batch_size=8, resize=(32, 48), root=root, download=False)
    X, _ = next(iter(fm.val_dataloader()))
    assert X.shape == (8, 1, 32, 48)
    assert 0.0 <= X.min() and X.max() <= 1.0


def test_does_quick_mode_keep_the_first_examples(tmp_path: Path, monkeypatch):
    arrays = fake_fashion_mnist(tmp_path / "FashionMNIST" / "raw",
                                num_train=data.QUICK_TRAIN + 100, num_val=data.QUICK_VAL + 10)
    monkeypatch.setenv("CNN_QUICK", "1")
    fm = data.FashionMNIST(root=tmp_path, download=False)
    assert (len(fm.train), len(fm.val)) == (data.QUICK_TRAIN, data.QUICK_VAL)
    assert np.array_equal(fm.train.labels.numpy(), arrays["train"][1][:data.QUICK_TRAIN])
    assert len(data.FashionMNIST(root=tmp_path, download=False, num_train=100).train) == 100
    monkeypatch.setenv("CNN_QUICK", "0")
    assert len(data.FashionMNIST(root=tmp_path, download=False).train) == data.QUICK_TRAIN + 100


def test_do_tensors_hold_the_whole_split_resized_once(small_dataset):
    root, arrays = small_dataset
    fm = data.FashionMNIST(resize=(32, 32), root=root, download=False)
    X, y, resized = fm.tensors(True)
    assert resized and X.shape == (100, 1, 32, 32) and X.dtype == torch.float32
    assert np.array_equal(y.numpy(), arrays["train"][1])
    assert fm.tensors(True)[0] is X, "tensors() should be cached per split, device and dtype"
    # the same images through the batch path: scaled and resized identically
    reference = torch.cat([x for x, _ in data.FashionMNIST(
        batch_size=100, resize=(32, 32), root=root, download=False).val_dataloader()])
    torch.testing.assert_close(fm.tensors(False)[0], reference)


def test_do_tensors_leave_resizing_to_the_caller_when_memory_is_short(small_dataset):
    root, _ = small_dataset
    fm = data.FashionMNIST(resize=(64, 64), root=root, download=False)
    X, _, resized = fm.tensors(False, max_bytes=1000)
    assert not resized and X.shape == (40, 28, 28) and X.dtype == torch.uint8
    batch = fm.prepare_batch(X[:4], torch.float32)
    assert batch.shape == (4, 1, 64, 64)
    torch.testing.assert_close(batch, next(iter(fm.val_dataloader()))[0][:4])


def test_do_labels_and_pictures_come_out_readable(small_dataset):
    root, _ = small_dataset
    fm = data.FashionMNIST(batch_size=8, root=root, download=False)
    assert fm.text_labels(torch.tensor([0, 9])) == ["t-shirt", "ankle boot"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = fm.visualize(next(iter(fm.val_dataloader())), nrows=2, ncols=4)
    try:
        assert len(fig.axes) == 8
        assert [ax.get_title() for ax in fig.axes] == fm.text_labels(fm.val.labels[:8])
    finally:
        plt.close(fig)


# --- finding the raw files ------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime) for p in sorted(folder.iterdir())}


def test_are_shared_files_linked_without_writing_to_the_shared_folder(tmp_path, monkeypatch):
    shared = tmp_path / "shared" / "FashionMNIST" / "raw"
    fake_fashion_mnist(shared)
    before = _snapshot(shared)
    monkeypatch.setattr(data, "_shared_copies", lambda: [tmp_path / "elsewhere", shared])
    root = tmp_path / "root"
    raw = data.find_raw_folder(root, download=False)
    assert raw == root / "FashionMNIST" / "raw"
    for pair in data.FILES.values():
        for name in pair:
            assert (raw / name).resolve() == (shared / name).resolve()
    assert _snapshot(shared) == before
    assert len(data.FashionMNIST(root=root, download=False).train) == 100


def test_is_a_dangling_link_from_a_moved_checkout_replaced(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    fake_fashion_mnist(shared)
    monkeypatch.setattr(data, "_shared_copies", lambda: [shared])
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    name = data.FILES["train"][0]
    (raw / name).symlink_to(tmp_path / "gone" / name)
    data.find_raw_folder(tmp_path / "root", download=False)
    assert (raw / name).resolve() == (shared / name).resolve()


def test_do_the_links_name_the_real_files_when_the_shared_copy_is_reached_by_a_link(
        tmp_path, monkeypatch):
    """A ../shared that is itself a link: the data root's links must not pass through it,
    or they dangle in the grader's sandbox, which binds only the real folder."""
    real = tmp_path / "real-shared"
    fake_fashion_mnist(real)
    via = tmp_path / "shared"
    via.symlink_to(real)
    monkeypatch.setattr(data, "_shared_copies", lambda: [via])
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    name = data.FILES["train"][0]
    (raw / name).symlink_to(via / name)  # as an earlier version made it
    data.find_raw_folder(tmp_path / "root", download=False)
    for pair in data.FILES.values():
        for n in pair:
            assert Path(os.readlink(raw / n)) == (real / n).resolve(), n


def test_does_a_complete_data_root_win_over_the_shared_copy(small_dataset, monkeypatch):
    root, _ = small_dataset
    monkeypatch.setattr(data, "_shared_copies", lambda: pytest.fail("shared copy consulted"))
    assert data.find_raw_folder(root, download=False) == root / "FashionMNIST" / "raw"


def test_does_a_missing_dataset_say_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_shared_copies", lambda: [tmp_path / "nowhere"])
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "root")):
        data.find_raw_folder(tmp_path / "root", download=False)


def test_does_the_data_root_follow_cnn_data(small_dataset, monkeypatch):
    root, _ = small_dataset
    monkeypatch.setenv("CNN_DATA", str(root))
    monkeypatch.setattr(data, "_shared_copies", lambda: [])
    assert len(data.FashionMNIST(download=False).val) == 40


# --- the real thing ------------------------------------------------------------------------
@pytest.mark.data
def test_is_the_real_fashion_mnist_complete_and_balanced():
    from helpers import real_fashion_mnist

    folder = real_fashion_mnist()
    root = folder.parent.parent  # <root>/FashionMNIST/raw: read in place, nothing is linked
    for split, n in (("train", 60000), ("val", 10000)):
        images, labels = data.load_split(split, root, download=False)
        assert images.shape == (n, 28, 28) and images.dtype == torch.uint8
        assert torch.equal(torch.bincount(labels, minlength=10), torch.full((10,), n // 10))
        assert int(images.max()) == 255 and int(images.min()) == 0
