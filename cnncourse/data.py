"""Fashion-MNIST for the whole course: one loader with ``d2l.FashionMNIST``'s interface.

The raw IDX files are found in this order, and nothing is downloaded when a copy exists:
1. ``<data root>/FashionMNIST/raw/*.gz`` (the data root is ``$CNN_DATA``, see ``config``);
2. a read-only copy beside the checkout (``../shared/data/FashionMNIST/raw``), linked into
   the data root, so the shared folder is never written to;
3. the internet, through torchvision's mirrors and checksums.
Images stay ``uint8`` in memory (60,000 x 28 x 28 is 47 MB); they are scaled to [0, 1] and
resized per batch, or once on the accelerator by ``tensors()`` for the fast trainer.
"""
from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import data_root, quick_mode

__all__ = ["FashionMNIST", "LABELS", "FILES", "read_idx", "find_raw_folder", "load_split"]

LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat",
          "sandal", "shirt", "sneaker", "bag", "ankle boot")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
# Reduced mode (CNN_QUICK=1): enough data to see learning happen on 2 CPU cores.
QUICK_TRAIN, QUICK_VAL = 2048, 512


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip or plain) into a numpy array of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, expected {expected} for shape {shape}")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # big-endian on disk: to native byte order


def _shared_copies() -> list[Path]:
    # The read-only copy that CI and our machines keep beside the checkout.
    repo = Path(__file__).resolve().parent.parent
    return [repo.parent / "shared" / "data" / "FashionMNIST" / "raw",
            repo / "shared" / "data" / "FashionMNIST" / "raw"]


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for pair in FILES.values() for name in pair)


def _through_a_link(path: Path) -> bool:
    """A link whose path to the file passes another link (see ``find_raw_folder``)."""
    return path.is_symlink() and Path(os.readlink(path)) != path.resolve()


def find_raw_folder(root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return ``<root>/FashionMNIST/raw`` holding the four .gz files, linking or fetching them."""
    raw = Path(root or data_root()).expanduser() / "FashionMNIST" / "raw"
    if _complete(raw) and not any(_through_a_link(raw / name)
                                  for pair in FILES.values() for name in pair):
        return raw
    for shared in _shared_copies():
        if _complete(shared) and shared.resolve() != raw.resolve():
            raw.mkdir(parents=True, exist_ok=True)
            for pair in FILES.values():
                for name in pair:
                    target = raw / name
                    # The link names the real file, with no symlink on the way (a
                    # ../shared that is itself a link, say): the grader's sandbox binds
                    # the folder the link resolves to, and a path through a link it does
                    # not see would dangle there.
                    source = (shared / name).resolve()
                    if target.is_file() and not _through_a_link(target):
                        continue
                    target.unlink(missing_ok=True)  # dangling, or through a link
                    try:
                        target.symlink_to(source)
                    except OSError:
                        shutil.copyfile(shared / name, target)
            return raw
    if _complete(raw):
        return raw
    if not download:
        raise FileNotFoundError(f"Fashion-MNIST is not in {raw} and download=False")
    from torchvision.datasets import FashionMNIST as _TV  # checks each file's MD5

    _TV(str(raw.parent.parent), train=True, download=True)
    _TV(str(raw.parent.parent), train=False, download=True)
    return raw


def load_split(split: str, root: str | os.PathLike | None = None,
               download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) for ``split`` in {"train", "val"}."""
    raw = find_raw_folder(root, download)
    images_file, labels_file = FILES[split]
    images = torch.from_numpy(read_idx(raw / images_file).copy())
    labels = torch.from_numpy(read_idx(raw / labels_file).astype(np.int64))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"{raw}: {split} images {tuple(images.shape)} and labels "
                         f"{tuple(labels.shape)} do not match")
    return images, labels


def _resize(images: torch.Tensor, size: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    # (B, 28, 28) uint8 -> (B, 1, h, w) floats in [0, 1]
    x = images.unsqueeze(1).to(dtype).div_(255)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


@dataclass
class _Split:
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i].unsqueeze(0).float().div(255), self.labels[i]


class _Batches:
    """Iterates over (X, y) batches; X is (B, 1, h, w) float32 in [0, 1]."""

    def __init__(self, split: _Split, batch_size: int, size: tuple[int, int], shuffle: bool,
                 seed: int):
        self.split, self.batch_size, self.size = split, batch_size, size
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def __iter__(self):
        n = len(self.split)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g)
            self.epoch += 1
        else:
            order = torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield _resize(self.split.images[idx], self.size, torch.float32), self.split.labels[idx]


class FashionMNIST:
    """Fashion-MNIST with ``d2l.FashionMNIST``'s interface, held in memory as tensors.

    ``FashionMNIST(batch_size=128, resize=(96, 96))`` gives ``train_dataloader()``,
    ``val_dataloader()``, ``text_labels()`` and ``visualize()`` like d2l, plus ``tensors()``
    for the fast trainer. In reduced mode (``CNN_QUICK=1``) it keeps the first 2,048 training
    and 512 validation examples unless ``num_train``/``num_val`` say otherwise.
    """

    def __init__(self, batch_size: int = 64, resize: tuple[int, int] = (28, 28),
                 root: str | os.PathLike | None = None, num_train: int | None = None,
                 num_val: int | None = None, download: bool = True, seed: int = 0):
        if quick_mode():
            num_train = num_train or QUICK_TRAIN
            num_val = num_val or QUICK_VAL
        self.batch_size, self.resize, self.seed = batch_size, tuple(resize), seed
        self.root = Path(root or data_root()).expanduser()
        xs, ys = load_split("train", self.root, download)
        xv, yv = load_split("val", self.root, download)
        self.train = _Split(xs[:num_train], ys[:num_train])
        self.val = _Split(xv[:num_val], yv[:num_val])
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (f"FashionMNIST(train={len(self.train)}, val={len(self.val)}, "
                f"batch_size={self.batch_size}, resize={self.resize})")

    def text_labels(self, indices) -> list[str]:
        return [LABELS[int(i)] for i in indices]

    def get_dataloader(self, train: bool) -> _Batches:
        split = self.train if train else self.val
        return _Batches(split, self.batch_size, self.resize, shuffle=train, seed=self.seed)

    def train_dataloader(self) -> _Batches:
        return self.get_dataloader(True)

    def val_dataloader(self) -> _Batches:
        return self.get_dataloader(False)

    def tensors(self, train: bool, device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32,
                max_bytes: int = 8 << 30) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """All of a split on ``device``: (X, y, resized).

        X is resized once to (N, 1, h, w) in ``dtype`` when that fits in ``max_bytes``
        (``resized`` is True); otherwise X stays (N, 28, 28) uint8 and the caller resizes
        each batch with ``prepare_batch``. Results are cached per device and dtype.
        """
        key = (train, str(device), dtype)
        if key not in self._cache:
            split = self.train if train else self.val
            n, (h, w) = len(split), self.resize
            images = split.images.to(device)
            labels = split.labels.to(device)
            resized = n * h * w * torch.empty((), dtype=dtype).element_size() <= max_bytes
            if resized:
                chunks = [_resize(images[i:i + 4096], self.resize, dtype)
                          for i in range(0, n, 4096)]
                images = (torch.cat(chunks) if chunks
                          else images.new_empty((0, 1, h, w), dtype=dtype))
            self._cache[key] = (images, labels, resized)
        return self._cache[key]

    def prepare_batch(self, images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Scale and resize a batch of raw uint8 images as ``tensors`` would have."""
        return _resize(images, self.resize, dtype)

    def visualize(self, batch, nrows: int = 1, ncols: int = 8, labels=None):
        """Show the first ``nrows * ncols`` images of ``(X, y)`` with their class names."""
        import matplotlib.pyplot as plt

        X, y = batch
        labels = labels if labels is not None else self.text_labels(y)
        fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.6 * nrows), squeeze=False)
        # not strict: the grid shows the first nrows * ncols images, and a short batch leaves
        # the last axes empty
        for ax, img, label in zip(axes.flat, X, labels, strict=False):
            ax.imshow(img.squeeze(0).cpu().numpy(), cmap="gray")
            ax.set_title(label, fontsize=9)
            ax.axis("off")
        fig.tight_layout()
        return fig
