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
files, keyed on the files' names, sizes and SHA-256 (change a file and the
cache is rebuilt) and written atomically.  The cache is optional: read back,
its arrays must match the checksums recorded with them, else it is rebuilt
with a warning naming it; a read-only directory (never written into) or a
failed write (a full disk) leaves the run without it, with one warning.
"""

from __future__ import annotations

import contextlib
import glob
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
from bpexp.data.idx import IDXError, decompress, idx_header, parse_idx, read_bytes

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
        try:
            if candidate.is_file():
                return candidate
        except OSError as exc:  # a directory that may not be searched
            raise MNISTError(f"MNIST: cannot look into {root} ({exc.strerror or exc})") from None
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
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # under a file, in a read-only directory or file system
        raise MNISTError(
            f"MNIST: {name} is not in {root}, which cannot be created to download it into "
            f"({exc.strerror or exc}); point dataset.root at a directory that holds the files "
            "or can be written"
        ) from None
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


def _read_files(paths: dict[str, Path]) -> dict[str, bytes]:
    """Each file's bytes as stored (gzipped or not), by IDX name."""
    raws = {}
    for name, path in paths.items():
        try:
            raws[name] = path.read_bytes()
        except OSError as exc:
            raise MNISTError(
                f"MNIST: cannot read {path} ({exc.strerror or exc}); make it readable or "
                "point dataset.root at a copy"
            ) from None
    return raws


def _fingerprint(paths: dict[str, Path], raws: dict[str, bytes]) -> str:
    """Which bytes a cache was decoded from: each file's name, size and SHA-256 as stored.

    Content, not modification times: a file replaced by another of the same size
    and time (``cp -p``, ``rsync -t``, an unpacked archive) still counts as changed.
    Hashing the stored (usually gzipped) bytes costs a small part of decoding them.
    """
    return ";".join(
        f"{paths[name].name}:{len(raw)}:{hashlib.sha256(raw).hexdigest()}"
        for name, raw in sorted(raws.items())
    )


def _decode(split: str, paths: dict[str, Path], raws: dict[str, bytes]) -> dict[str, np.ndarray]:
    """Parse and cross-check a split's two files; also their SHA-256 and canonical-ness.

    ``<name>_sha256`` is the SHA-256 of the decompressed file, that is of the
    array's IDX header followed by its bytes (see :func:`array_sha256`).
    """
    arrays: dict[str, np.ndarray] = {}
    for kind, (name, ndim, md5) in FILES[split].items():
        path = paths[name]
        data = decompress(raws[name], path)
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


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of the IDX file an unsigned-byte ``array`` is decoded from: header, then bytes."""
    digest = hashlib.sha256(idx_header(array))
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def writable(directory: Path) -> bool:
    """Whether bpexp may write into ``directory``.

    A directory without any write permission bit counts as read-only even for
    root, who could write there anyway: a shared, read-only data folder is
    never written into.  A read-only file system is read-only for everyone.
    """
    try:
        mode = directory.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o222) and os.access(directory, os.W_OK)


#: a temporary cache file older than this (seconds) is a killed writer's, removed by the next
STALE_TMP_AGE = 3600.0


def _write_atomic_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to a temporary name beside ``path``, then rename it into place.

    A writer refused half-way (a full disk) removes its temporary file; one
    killed half-way leaves it (hidden, removed by a later writer once older
    than :data:`STALE_TMP_AGE`), never a partial ``path``.
    """
    prefix = f".{path.name}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # readable by whoever reads the IDX files beside it
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for old in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        with contextlib.suppress(OSError):  # another process may be removing it too
            if time.time() - old.stat().st_mtime > STALE_TMP_AGE:
                old.unlink()


def cache_path(root: Path, split: str) -> Path:
    """Where a split's decoded arrays are cached: ``mnist-train.npz`` or ``mnist-test.npz``."""
    return root / f"mnist-{split}.npz"


def cache_problem(arrays: dict[str, np.ndarray], split: str) -> str | None:
    """What is wrong with a cache's ``arrays`` for ``split`` (None: nothing).

    Each array must be the unsigned bytes it was decoded as and hash to the
    SHA-256 recorded with it when the cache was written (:func:`array_sha256`),
    so a cache altered since (a shifted label, a flipped pixel) is refused.
    """
    names = [name for name, _, _ in FILES[split].values()]
    expected = {"images", "labels", "fingerprint"}
    expected |= {f"{name}_{fact}" for name in names for fact in ("sha256", "canonical")}
    missing = sorted(expected - set(arrays))
    if missing:
        return f"it lacks {', '.join(missing)}"
    for kind, (name, ndim, _) in FILES[split].items():
        array = arrays[kind]
        if array.dtype != np.uint8 or array.ndim != ndim:
            return f"its {kind} are {array.ndim}-d {array.dtype}, not {ndim}-d uint8"
        if array_sha256(array) != str(arrays[f"{name}_sha256"]):
            return f"its {kind} do not match the SHA-256 recorded with them"
    if len(arrays["images"]) != len(arrays["labels"]):
        return f"it holds {len(arrays['images'])} images but {len(arrays['labels'])} labels"
    return None


def _load_cache(cache: Path, split: str, key: str) -> tuple[dict | None, str | None]:
    """The verified arrays cached for the files ``key`` names, or None and what was wrong.

    A cache of other files (``key`` changed) is simply out of date: no problem.
    """
    if not cache.exists():
        return None, None
    try:
        with np.load(cache, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        # the cache is optional, and np.load raises whatever its layers do (zipfile's
        # BadZipFile, EOFError, zlib, format and OS errors): any of them means rebuild
        return None, f"unreadable: {' '.join(str(exc).split()) or type(exc).__name__}"
    problem = cache_problem(arrays, split)
    if problem:
        return None, problem
    if str(arrays["fingerprint"]) != key:
        log.debug("MNIST: %s was decoded from other files; rebuilding it", cache)
        return None, None
    return arrays, None


#: caches already warned about in this process (a sweep's jobs warn once)
_WARNED: set[Path] = set()


def _store_cache(cache: Path, arrays: dict[str, np.ndarray], key: str, damage: str | None) -> None:
    """Cache ``arrays`` in ``cache`` if its directory allows; never fails the run."""
    if not writable(cache.parent):
        reason, todo = f"{cache.parent} is read-only", "make it writable to cache them"
    else:
        try:
            _write_atomic_npz(cache, {**arrays, "fingerprint": np.array(key)})
        except OSError as exc:  # a full disk, a quota, a file system gone read-only
            reason, todo = f"writing it failed ({exc.strerror or exc})", "free space to cache them"
        else:
            if damage:
                log.warning("MNIST: the cache %s was damaged (%s); rebuilt it", cache, damage)
            return
    if damage:
        log.warning(
            "MNIST: the cache %s is damaged (%s) and %s; the IDX files are decoded instead "
            "until it is deleted",
            cache,
            damage,
            reason,
        )
    elif cache not in _WARNED:
        _WARNED.add(cache)
        log.warning(
            "MNIST: not caching the decoded arrays in %s: %s; each run decodes the IDX files (%s)",
            cache,
            reason,
            todo,
        )


def read_split(
    root: Path, split: str, *, download_missing: bool = True, mirrors=MIRRORS, timeout=60.0
) -> dict:
    """The decoded arrays of one split's two files in ``root`` (downloading missing ones).

    Returns a dict with ``images`` (n, 28, 28) uint8, ``labels`` (n,) uint8, per
    file ``<name>_sha256`` and ``<name>_canonical``, and ``paths``.  The arrays
    are cached beside the files (:func:`cache_path`), keyed on the files'
    content and checked against their recorded checksums when read back; a
    damaged cache is rebuilt with a warning, and a cache that cannot be written
    (a read-only ``root``, see :func:`writable`; a full disk) is skipped with one.
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
    raws = _read_files(paths)
    key = _fingerprint(paths, raws)
    cache = cache_path(root, split)
    cached, damage = _load_cache(cache, split, key)
    if cached is not None:
        return {**{k: v for k, v in cached.items() if k != "fingerprint"}, "paths": paths}
    arrays = _decode(split, paths, raws)
    _store_cache(cache, arrays, key, damage)
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
