"""The image datasets factorgen ships (packages/io/src/data), read with numpy: Fashion-MNIST's gzipped IDX files and
the committed emoji set. Pixels stay uint8 [N, H, W, C] in factorgen's order, so ``batch_indices`` picks the same
images. Folder datasets (``--dataset folder``) are resized by factorgen through sharp and are not read here.
"""
import gzip
import json
import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from .errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class ImageDataset:
    """name as factorgen names it (``fashion-mnist/train``), images uint8 [n, H, W, C], labels int32 [n]."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: List[str]


def _gunzip(path: str) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable gzip file ({e})") from None


def load_fashion_mnist(folder: str, split: str) -> ImageDataset:
    """factorgen's loadFashionMnist: IDX images (magic 2051) and labels (2049), 28x28x1."""
    prefix = "train" if split == "train" else "t10k"
    raw = _gunzip(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"))
    magic, n, h, w = np.frombuffer(raw[:16], ">u4")
    if magic != 2051 or len(raw) != 16 + n * h * w:
        raise UserError(f"{os.path.join(folder, prefix + '-images-idx3-ubyte.gz')}: not an IDX image file of its stated size")
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w, 1)
    lab = _gunzip(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"))
    labels = np.frombuffer(lab, np.uint8, offset=8).astype(np.int32)
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    return ImageDataset(f"fashion-mnist/{split}", images, labels, names)


def load_emoji(folder: str, split: str) -> ImageDataset:
    """factorgen's loadEmoji: emoji32.json + emoji32.bin.gz; the test split is meta.testIndices, train the rest."""
    meta_file = os.path.join(folder, "emoji32.json")
    try:
        meta = json.load(open(meta_file))
    except FileNotFoundError:
        raise UserError(f"{meta_file}: no such file") from None
    raw = _gunzip(os.path.join(folder, "emoji32.bin.gz"))
    s, c = meta["size"], meta["channels"]
    allpx = np.frombuffer(raw, np.uint8).reshape(meta["count"], s, s, c)
    test = np.zeros(meta["count"], bool)
    test[meta["testIndices"]] = True
    keep = np.nonzero(test if split == "test" else ~test)[0]
    return ImageDataset(f"emoji/{split}", allpx[keep], np.asarray(meta["labels"], np.int32)[keep], meta["classNames"])


def load_dataset(name: str, folder: Optional[str], split: str) -> ImageDataset:
    """``--dataset`` fashion-mnist or emoji, from ``--data`` or the committed copy under data/."""
    if name == "fashion-mnist":
        return load_fashion_mnist(folder or os.path.join(REPO, "data", "fashion-mnist"), split)
    if name == "emoji":
        return load_emoji(folder or os.path.join(REPO, "data", "emoji"), split)
    raise UserError(f"--dataset {name}: the twin reads fashion-mnist and emoji (a folder dataset is resized by factorgen's loader)")


def flip_mask(batch: int, step: int, seed: str, enabled: bool) -> np.ndarray:
    """factorgen's flipMask: image k of batch ``step`` is mirrored when draw k of Rng(f"{seed}/flip/step{step}") < 0.5."""
    from .rng import Rng

    out = np.zeros(batch, np.uint8)
    if not enabled:
        return out
    rng = Rng(f"{seed}/flip/step{step}")
    for k in range(batch):
        out[k] = 1 if rng.next() < 0.5 else 0
    return out


def gather_images(ds: ImageDataset, indices, flips: np.ndarray) -> np.ndarray:
    """factorgen's gatherImages then toFloat: [B, H, W, C] float32 in [-1, 1] (pixel / 127.5 - 1), flipped left-right where set."""
    x = ds.images[np.asarray(indices)].copy()
    f = flips.astype(bool)
    x[f] = x[f][:, :, ::-1, :]
    # in float64 then rounded once, as JavaScript's pixel / 127.5 - 1 stored into a Float32Array
    return (x.astype(np.float64) / 127.5 - 1).astype(np.float32)
