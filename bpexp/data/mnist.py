"""MNIST from the standard IDX files: found, downloaded, validated, cached.

Files live in one directory (``root``): by default ``$BPEXP_DATA_DIR/mnist``,
else ``$XDG_CACHE_HOME/bpexp/mnist`` (``~/.cache/bpexp/mnist``).  Each may be
gzipped (``.gz``) or not.  A missing file is downloaded from the first mirror
that serves it, into a temporary name in ``root``; it is renamed into place
only once its decompressed content matches the published MD5, so an
interrupted or corrupt download leaves nothing a later run would trust.

``source`` (:data:`SOURCES`) says which split the training subset comes from:
the official training split, or the official test split, from which the
training and validation subsets are then drawn disjoint (only the two t10k
files are needed).

Each split's decoded arrays are cached as ``mnist-<split>.npz`` beside its
files when the directory is writable (never in a read-only one), keyed on the
files' names, sizes and modification times: change a file and the cache is
rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
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
    indices_record,
    split_stratified,
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
#: dataset.source: where a run's training and validation subsets come from
SOURCES = {
    "auto": "train when the training split's files are in root, else test_split when the "
    "test split's are, else train (downloading what is missing)",
    "train": "training: a stratified subset of the official 60,000-image training split; "
    "validation: a stratified subset of the official 10,000-image test split",
    "test_split": "training and validation: disjoint stratified subsets of the official "
    "10,000-image test split",
}
#: what to do when files are missing, for every message that says so
PUT_FILES = (
    f"put the files there by hand ({', '.join(FILE_NAMES)}, .gz or not; "
    "the two t10k files alone are enough for source=test_split)"
)

log = logging.getLogger(__name__)


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
    if root.is_dir() and not writable(root):
        raise MNISTError(f"MNIST: {name} is not in {root}, which is read-only; {PUT_FILES}")
    root.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{name}.gz"
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name}.", suffix=".part")
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
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    raise MNISTError(
        f"MNIST: could not download {name}.gz into {root} ({'; '.join(errors)}); {PUT_FILES}"
    )


def _fingerprint(paths: dict[str, Path]) -> str:
    return ";".join(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for _, p in sorted(paths.items())
    )


def _decode(split: str, paths: dict[str, Path]) -> dict[str, np.ndarray]:
    """Parse and cross-check a split's two files; also their SHA-256 and canonical-ness."""
    arrays: dict[str, np.ndarray] = {}
    for kind, (name, ndim, md5) in FILES[split].items():
        path = paths[name]
        data = read_bytes(path)
        arrays[kind] = parse_idx(data, ndim, str(path))
        arrays[f"{name}_sha256"] = np.array(hashlib.sha256(data).hexdigest())
        arrays[f"{name}_canonical"] = np.array(hashlib.md5(data).hexdigest() == md5)
    images, labels = arrays["images"], arrays["labels"]
    img_path, lab_path = (paths[FILES[split][kind][0]] for kind in ("images", "labels"))
    if images.shape[0] != labels.shape[0]:
        raise MNISTError(
            f"{img_path} holds {images.shape[0]} images but {lab_path} holds "
            f"{labels.shape[0]} labels: the files do not belong together"
        )
    if labels.size and labels.max() > 9:
        raise MNISTError(f"{lab_path}: labels must be digits 0-9, found {labels.max()}")
    return arrays


def writable(directory: Path) -> bool:
    """Whether bpexp may write into ``directory``.

    A directory without any write permission bit counts as read-only even for
    root, who could write there anyway: a shared, read-only data folder is
    never written into.
    """
    try:
        mode = directory.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o222) and os.access(directory, os.W_OK)


def _write_atomic_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cache_path(root: Path, split: str) -> Path:
    """Where a split's decoded arrays are cached: ``mnist-train.npz`` or ``mnist-test.npz``."""
    return root / f"mnist-{split}.npz"


def read_split(
    root: Path, split: str, *, download_missing: bool = True, mirrors=MIRRORS, timeout=60.0
) -> dict:
    """The decoded arrays of one split's two files in ``root`` (downloading missing ones).

    Returns a dict with ``images`` (n, 28, 28) uint8, ``labels`` (n,) uint8, per
    file ``<name>_sha256`` and ``<name>_canonical``, and ``paths``.  The arrays
    are cached beside the files when ``root`` is writable (see :func:`writable`);
    otherwise they are decoded afresh each time.
    """
    paths, missing = {}, []
    for name, _, md5 in FILES[split].values():
        found = find_file(root, name)
        if found is None and download_missing:
            found = download(name, root, md5, mirrors, timeout)
        if found is None:
            missing.append(name)
        else:
            paths[name] = found
    if missing:
        raise MNISTError(
            f"MNIST: {', '.join(missing)} not found in {root} and downloads are off "
            f"(download=false); {PUT_FILES}"
        )
    cache = cache_path(root, split)
    key = _fingerprint(paths)
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["fingerprint"]) == key:
                    return {**{k: z[k] for k in z.files if k != "fingerprint"}, "paths": paths}
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache is rebuilt below
    arrays = _decode(split, paths)
    if writable(root):
        try:
            _write_atomic_npz(cache, {**arrays, "fingerprint": np.array(key)})
        except OSError as exc:  # a full disk, a read-only mount: run without the cache
            log.debug("MNIST: not caching decoded arrays in %s (%s)", cache, exc)
    return {**arrays, "paths": paths}


def _has_split(root: Path, split: str) -> bool:
    return all(find_file(root, name) for name, _, _ in FILES[split].values())


def resolve_source(source: str, root: Path) -> tuple[str, str]:
    """The source a run uses (``train`` or ``test_split``) and why, from what ``root`` holds.

    ``auto`` is ``train`` when the training split's two files are in ``root``,
    else ``test_split`` when the test split's are, else ``train`` (the missing
    files are then downloaded, or reported).
    """
    if source not in SOURCES:
        raise ValueError(f"source: unknown {source!r}; valid: {', '.join(SOURCES)}")
    if source != "auto":
        return source, f"source={source} as configured"
    if _has_split(root, "train"):
        return "train", f"source=auto: the training split's files are in {root}"
    if _has_split(root, "test"):
        return "test_split", (
            f"source=auto: only the test split's files (t10k-*) are in {root}, so the "
            "training and validation subsets are both drawn from its 10,000 images"
        )
    return "train", f"source=auto: neither split's files are in {root}"


def load_mnist(
    *,
    rng: np.random.Generator,
    root: str | os.PathLike | None = None,
    source: str = "auto",
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
        The directory holding the IDX files (default: :func:`default_root`).
    source : {"auto", "train", "test_split"}
        Where the training subset comes from (see :data:`SOURCES`).
    train_size, test_size : int, optional
        Sizes of the stratified training and validation subsets.  With
        ``train``: subsets of the training and of the official test split
        (all samples when omitted).  With ``test_split``: disjoint subsets of
        the test split, ``train_size + test_size <= 10,000`` (``train_size``
        omitted: all that ``test_size`` leaves).
    download : bool
        Fetch missing files from ``mirrors`` (never the training split's with
        ``test_split``).
    normalize : {"unit", "standard"}
        ``unit`` scales pixels to [0, 1]; ``standard`` then centres and scales
        each pixel by the training subset's mean and standard deviation.

    The metadata records the source used, why, and for each subset the split
    it comes from, its size and the checksum of its row indices.
    """
    train_size = check_size(train_size, "train_size")
    test_size = check_size(test_size, "test_size")
    check_normalize(normalize)
    root = Path(root).expanduser() if root is not None else default_root()
    source, why = resolve_source(source, root)
    log.info("MNIST: %s", why)
    read = {"download_missing": bool(download), "mirrors": mirrors, "timeout": timeout}
    test = read_split(root, "test", **read)
    if source == "test_split":
        if test_size is None:
            raise ValueError(
                "test_size: null (the whole test split) leaves no training images with "
                "source=test_split; give a number, e.g. 2000"
            )
        train = test
        train_idx, val_idx = split_stratified(
            test["labels"], train_size, test_size, rng, of="images of the test split"
        )
    else:
        train = read_split(root, "train", **read)
        if train["images"].shape[1:] != test["images"].shape[1:]:
            raise MNISTError(
                f"MNIST: train images are {train['images'].shape[1:]} pixels but test "
                f"images are {test['images'].shape[1:]}"
            )

        def draw(labels: np.ndarray, size: int | None, what: str) -> np.ndarray:
            if size is None:
                return np.arange(len(labels))
            return stratified_indices(labels, size, rng, what)

        train_idx = draw(train["labels"], train_size, "train_size")
        val_idx = draw(test["labels"], test_size, "test_size")

    def rows(split: dict, idx: np.ndarray) -> np.ndarray:
        X = split["images"][idx].reshape(len(idx), -1).astype(dtype)
        X *= 1.0 / 255.0
        return X

    files = {
        name: {
            "path": str(split["paths"][name]),
            "sha256": str(split[f"{name}_sha256"]),
            "canonical": bool(split[f"{name}_canonical"]),
        }
        for split in ((test,) if train is test else (train, test))
        for name in split["paths"]
    }
    return classification_dataset(
        "mnist",
        rows(train, train_idx),
        train["labels"][train_idx],
        rows(test, val_idx),
        test["labels"][val_idx],
        n_classes=10,
        dtype=dtype,
        normalize=normalize,
        root=str(root),
        files=files,
        source=source,
        source_reason=why,
        validation=SOURCES[source],
        train_indices=indices_record(train_idx, "test" if source == "test_split" else "train"),
        val_indices=indices_record(val_idx, "test"),
    )
