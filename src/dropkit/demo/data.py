"""The demo's data: MNIST-1D (generated offline), and scikit-learn's digits as a fallback."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import torch
from torch import Tensor

from dropkit._validation import check_positive_int


@dataclass
class Split:
    """Training and validation tensors: features in [0, 1], integer class labels."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_val]).max().item()) + 1


def load_digits_split(train_size: int = 100, val_size: int = 600, *, seed: int = 0) -> Split:
    """The 8x8 digits of scikit-learn (1797 images, 10 classes), a class-balanced small split.

    The data ships with scikit-learn, so nothing is downloaded. ``train_size`` images train the
    model and ``val_size`` other images measure it, both drawn by scikit-learn's stratified split
    (each class in proportion to its share of the data: the digits' classes are nearly equal)
    with ``seed`` as its random state.

    Args:
        train_size: training images, >= 10.
        val_size: validation images, >= 1; at most what the training set leaves.
        seed: the split's seed.

    Example:
        >>> from dropkit.demo import load_digits_split
        >>> split = load_digits_split(50, 200)
        >>> tuple(split.x_train.shape), tuple(split.x_val.shape), split.classes
        ((50, 64), (200, 64), 10)
        >>> int(split.y_train.bincount().min())
        5
    """
    train_size = check_positive_int(train_size, "train_size")
    val_size = check_positive_int(val_size, "val_size")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ImportError(
            "the digits data comes with scikit-learn: pip install 'dropkit[cli]'"
        ) from error
    digits = load_digits()
    features = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    classes = int(labels.max().item()) + 1
    if train_size < classes:
        raise ValueError(f"train_size must be at least {classes} (one per class), got {train_size}")
    if train_size + val_size > len(labels):
        raise ValueError(
            f"train_size + val_size must be at most {len(labels)}, got {train_size} + {val_size}"
        )
    train_index, val_index = train_test_split(
        list(range(len(labels))),
        train_size=train_size,
        test_size=val_size,
        stratify=digits.target,
        random_state=seed,
    )
    train, val = torch.tensor(train_index), torch.tensor(val_index)
    return Split(features[train], labels[train], features[val], labels[val])


def load_mnist1d(seed: int = 42, *, samples: int = 5000) -> Split:
    """MNIST-1D: 4000 training and 1000 test sequences of length 40, 10 classes.

    Greydanus and Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024,
    https://arxiv.org/abs/2011.14439. The ``mnist1d`` package generates the data procedurally
    (no download, a few seconds; kept in memory after the first call); ``seed`` 42 is the
    paper's data set. The package seeds
    Python's and numpy's global generators while it works; their states are restored afterwards.
    The validation tensors of the returned split are the test set.

    Args:
        seed: the seed of the generated data set.
        samples: sequences in all (the paper's 5000 by default); four fifths train, the rest
            test. Fewer make a smaller, faster set for quick checks.

    Example:
        >>> from dropkit.demo import load_mnist1d
        >>> data = load_mnist1d(samples=500)
        >>> tuple(data.x_train.shape), tuple(data.x_val.shape), data.classes
        ((400, 40), (100, 40), 10)
    """
    samples = check_positive_int(samples, "samples")
    return _mnist1d(int(seed), samples)


@functools.lru_cache(maxsize=2)
def _mnist1d(seed: int, samples: int) -> Split:
    try:
        import numpy as np
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError(
            "the MNIST-1D data comes from the mnist1d package: pip install 'dropkit[cli]'"
        ) from error
    arguments = get_dataset_args()
    arguments.seed = seed
    arguments.num_samples = samples
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(arguments)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return Split(
        torch.tensor(data["x"], dtype=torch.float32),
        torch.tensor(data["y"], dtype=torch.long),
        torch.tensor(data["x_test"], dtype=torch.float32),
        torch.tensor(data["y_test"], dtype=torch.long),
    )
