"""MNIST from the four standard IDX files: found, downloaded, validated, cached.

Files live in one directory (``root``): by default ``$BPEXP_DATA_DIR/mnist``,
else ``$XDG_CACHE_HOME/bpexp/mnist`` (``~/.cache/bpexp/mnist``).  Each may be
gzipped (``.gz``) or not.  A missing file is downloaded from the first mirror
that serves it, into a temporary name in ``root``; it is renamed into place
only once its decompressed content matches the published MD5, so an
interrupted or corrupt download leaves nothing a later run would trust.

Decoded arrays are cached as ``mnist-decoded.npz`` beside the files (when the
directory is writable), keyed on the files' names, sizes and modification
times: change a file and the cache is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from bpexp.data.base import (
    Dataset,
    check_normalize,
    check_size,
    classification_dataset,
    stratified_indices,
)
from bpexp.data.idx import IDXError, parse_idx, read_bytes

#: split -> (kind -> (file name, IDX dimensions, MD5 of the decompressed file))
FILES = {
    "train": {
        "images": ("train-images-idx3-ubyte", 3, "6bbc9ace898e44ae57da46a324031adb"),
        "labels": ("train-labels-idx1-ubyte", 1, "a25bea736e30d166cdddb491f175f624"),
    },
    "test": {
        "images": ("t10k-images-idx3-ubyte", 3, "2646ac647ad5339dbf082846283269ea"),
        "labels": ("t10k-labels-idx1-ubyte", 1, "27ae3e4e09519cfbb04c329615203637"),
    },
}
FILE_NAMES = [f[0] for split in FILES.values() for f in split.values()]
#: Base URLs serving ``<file name>.gz``, tried in order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
CACHE_NAME = "mnist-decoded.npz"


class MNISTError(ValueError):
    """MNIST files missing, unobtainable or invalid; the message says what to do."""


def default_root() -> Path:
    """``$BPEXP_DATA_DIR/mnist``, else the per-user cache directory."""
    if os.environ.get("BPEXP_DATA_DIR"):
        return Path(os.environ["BPEXP_DATA_DIR"]).expanduser() / "mnist"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "bpexp" / "mnist"


def find_file(root: Path, name: str) -> Path | None:
    """``root/name`` or ``root/name.gz``, whichever exists (the plain file first)."""
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def download(
    name: str,
    root: Path,
    md5: str,
    mirrors: tuple[str, ...] | list[str] = MIRRORS,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``name.gz`` into ``root`` from the first mirror that serves a good copy.

    Each attempt has ``timeout`` seconds in all (connect and transfer).

    Raises
    ------
    MNISTError
        When no mirror gave a copy whose decompressed MD5 is ``md5``.
    """
    root.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{name}.gz"
        fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name}.", suffix=".part")
        try:
            deadline = time.monotonic() + timeout
            with os.fdopen(fd, "wb") as fh, urllib.request.urlopen(url, timeout=timeout) as resp:
                while chunk := resp.read(1 << 16):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"timed out after {timeout:g} s")
                    fh.write(chunk)
            got = hashlib.md5(read_bytes(tmp)).hexdigest()
            if got != md5:
                raise IDXError(f"checksum mismatch (MD5 {got}, expected {md5})")
            target = root / f"{name}.gz"
            os.replace(tmp, target)
            return target
        except (OSError, urllib.error.URLError, IDXError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise MNISTError(
        f"MNIST: could not download {name}.gz into {root} ({'; '.join(errors)}); "
        f"put the four files there by hand: {', '.join(FILE_NAMES)} (.gz or not)"
    )


def _fingerprint(paths: dict[str, Path]) -> str:
    return ";".join(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for _, p in sorted(paths.items())
    )


def _decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    """Parse and cross-check the four files; also their SHA-256 and canonical-ness."""
    arrays: dict[str, np.ndarray] = {}
    for split, kinds in FILES.items():
        for kind, (name, ndim, md5) in kinds.items():
            path = paths[name]
            data = read_bytes(path)
            arrays[f"{split}_{kind}"] = parse_idx(data, ndim, str(path))
            arrays[f"{name}_sha256"] = np.array(hashlib.sha256(data).hexdigest())
            arrays[f"{name}_canonical"] = np.array(hashlib.md5(data).hexdigest() == md5)
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        img_path, lab_path = paths[kinds["images"][0]], paths[kinds["labels"][0]]
        if images.shape[0] != labels.shape[0]:
            raise MNISTError(
                f"{img_path} holds {images.shape[0]} images but {lab_path} holds "
                f"{labels.shape[0]} labels: the files do not belong together"
            )
        if labels.size and labels.max() > 9:
            raise MNISTError(f"{lab_path}: labels must be digits 0-9, found {labels.max()}")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise MNISTError(
            f"MNIST: train images are {arrays['train_images'].shape[1:]} pixels but test "
            f"images are {arrays['test_images'].shape[1:]}"
        )
    return arrays


def _write_atomic_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_mnist(root: Path, *, download_missing: bool = True, mirrors=MIRRORS, timeout=60.0):
    """The decoded arrays of the four files in ``root`` (downloading missing ones).

    Returns a dict with ``train_images`` (n, 28, 28) uint8, ``train_labels``,
    ``test_images``, ``test_labels``, and per file ``<name>_sha256`` and
    ``<name>_canonical``, plus ``paths``.
    """
    paths, missing = {}, []
    for kinds in FILES.values():
        for name, _, md5 in kinds.values():
            found = find_file(root, name)
            if found is None and download_missing:
                found = download(name, root, md5, mirrors, timeout)
            if found is None:
                missing.append(name)
            else:
                paths[name] = found
    if missing:
        raise MNISTError(
            f"MNIST: {', '.join(missing)} not found in {root} and downloads are off; "
            f"put the four files there ({', '.join(FILE_NAMES)}, .gz or not), "
            "or allow downloads (download=true)"
        )
    cache = root / CACHE_NAME
    key = _fingerprint(paths)
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["fingerprint"]) == key:
                    return {**{k: z[k] for k in z.files if k != "fingerprint"}, "paths": paths}
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache is rebuilt below
    arrays = _decode(paths)
    if os.access(root, os.W_OK):
        _write_atomic_npz(cache, {**arrays, "fingerprint": np.array(key)})
    return {**arrays, "paths": paths}


def load_mnist(
    *,
    rng: np.random.Generator,
    root: str | os.PathLike | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    download: bool = True,
    normalize: str = "unit",
    mirrors: tuple[str, ...] | list[str] = MIRRORS,
    timeout: float = 60.0,
    dtype: str = "float64",
) -> Dataset:
    """MNIST as a :class:`Dataset`: 784 features, 10 one-hot classes.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the stratified subsets.
    root : path, optional
        The directory holding the four files (default: :func:`default_root`).
    train_size, test_size : int, optional
        Stratified subsets of the training and the official test split (the
        latter is the validation set); all samples when omitted.
    download : bool
        Fetch missing files from ``mirrors``.
    normalize : {"unit", "standard"}
        ``unit`` scales pixels to [0, 1]; ``standard`` then centres and scales
        each pixel by the training subset's mean and standard deviation.
    """
    train_size = check_size(train_size, "train_size")
    test_size = check_size(test_size, "test_size")
    check_normalize(normalize)
    root = Path(root).expanduser() if root is not None else default_root()
    raw = read_mnist(root, download_missing=bool(download), mirrors=mirrors, timeout=timeout)

    def subset(split: str, size: int | None, what: str):
        images, labels = raw[f"{split}_images"], raw[f"{split}_labels"]
        idx = (
            np.arange(len(labels)) if size is None else stratified_indices(labels, size, rng, what)
        )
        X = images[idx].reshape(len(idx), -1).astype(dtype)
        X *= 1.0 / 255.0
        return X, labels[idx]

    X_train, l_train = subset("train", train_size, "train_size")
    X_val, l_val = subset("test", test_size, "test_size")
    files = {
        name: {
            "path": str(raw["paths"][name]),
            "sha256": str(raw[f"{name}_sha256"]),
            "canonical": bool(raw[f"{name}_canonical"]),
        }
        for name in FILE_NAMES
    }
    return classification_dataset(
        "mnist",
        X_train,
        l_train,
        X_val,
        l_val,
        n_classes=10,
        dtype=dtype,
        normalize=normalize,
        root=str(root),
        files=files,
        validation="a stratified subset of the official test split",
    )
