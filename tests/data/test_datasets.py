"""Data sets through the real loading paths, on the real MNIST test split."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bpexp.core import MLP, fit
from bpexp.data import MNISTError, load_dataset
from bpexp.data.idx import IDXError, read_idx, write_idx
from bpexp.data.mnist import FILE_NAMES, STALE_TMP_AGE, cache_path, cache_problem
from tests.conftest import T10K, LocalHTTPServer


@pytest.fixture(scope="module")
def mnist_arrays(request):
    shared = request.getfixturevalue("shared_mnist")
    return (
        read_idx(shared / "t10k-images-idx3-ubyte.gz", 3),
        read_idx(shared / "t10k-labels-idx1-ubyte.gz", 1),
    )


def write_pair(root: Path, images, labels, n_train: int, gz: bool) -> Path:
    """A train/test IDX pair from the real test split: first n_train as 'train'."""
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    write_idx(root / f"train-images-idx3-ubyte{ext}", images[:n_train])
    write_idx(root / f"train-labels-idx1-ubyte{ext}", labels[:n_train])
    write_idx(root / f"t10k-images-idx3-ubyte{ext}", images[n_train:])
    write_idx(root / f"t10k-labels-idx1-ubyte{ext}", labels[n_train:])
    return root


# --------------------------------------------------------------- toy sets
def test_xor_and_toy3_are_the_tutorials_data():
    xor = load_dataset("xor")
    assert xor.X_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert xor.y_train.ravel().tolist() == [0, 1, 1, 0]
    assert np.array_equal(xor.X_val, xor.X_train) and xor.n_classes == 2
    assert "training samples themselves" in xor.metadata["validation"]
    toy = load_dataset("toy3", dtype="float32")
    assert toy.X_train.shape == (5, 3) and toy.X_train.dtype == np.float32
    assert (toy.X_train[:, 2] == 1).all()
    assert toy.y_train.ravel().tolist() == [0, 1, 1, 0, 0]


@pytest.mark.parametrize(
    "name,options,match",
    [
        ("cifar", {}, "unknown dataset 'cifar'; valid: xor, toy3, mnist, digits"),
        ("xor", {"train_size": 2}, "takes no options"),
        ("mnist", {"size": 5}, "unknown option size; valid: root, source, train_size"),
        (
            "digits",
            {"train_size": 5000},
            "train_size: 5000 is more than the 1437 samples available",
        ),
        ("digits", {"train_size": 5}, "fewer than the 10 classes"),
        ("digits", {"train_size": -3}, "train_size: must be an integer >= 1 or null, got -3"),
        ("digits", {"test_size": 0}, "test_size: must be an integer >= 1, got 0"),
        (
            "digits",
            {"normalize": "minmax"},
            "normalize: must be one of unit, standard, got 'minmax'",
        ),
    ],
)
def test_bad_names_and_options(name, options, match):
    with pytest.raises(ValueError, match=re.escape(match)) as info:
        load_dataset(name, **options)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------- digits
def test_digits_offline_stratified_and_scaled():
    d = load_dataset("digits", seed=0)
    assert d.X_train.shape == (1437, 64) and d.X_val.shape == (360, 64)
    assert d.y_train.shape == (1437, 10) and (d.y_train.sum(axis=1) == 1).all()
    assert 0.0 <= d.X_train.min() and d.X_train.max() <= 1.0
    # 360 of 1,797 per class: every class count within 1 of its share
    full = np.bincount(np.concatenate([d.y_train, d.y_val]).argmax(axis=1))
    assert np.all(np.abs(np.array(d.metadata["class_counts_val"]) - 360 * full / 1797) < 1)
    # no sample in both sets
    rows = {r.tobytes() for r in d.X_val}
    assert (
        sum(r.tobytes() in rows for r in d.X_train) < 20
    )  # the data set has a few duplicate images
    again = load_dataset("digits", seed=0)
    assert np.array_equal(again.X_train, d.X_train)
    assert not np.array_equal(load_dataset("digits", seed=1).X_train, d.X_train)


# ------------------------------------------------------------------ MNIST
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_idx_files(tmp_path, mnist_arrays, gz):
    images, labels = mnist_arrays
    root = write_pair(tmp_path / "mnist", images, labels, 8000, gz)
    d = load_dataset("mnist", root=root, download=False, dtype="float32")
    assert d.X_train.shape == (8000, 784) and d.X_val.shape == (2000, 784)
    assert d.y_train.shape == (8000, 10) and d.X_train.dtype == np.float32
    assert d.X_train.min() == 0.0 and d.X_train.max() == 1.0
    np.testing.assert_array_equal(d.y_train.argmax(axis=1), labels[:8000])
    np.testing.assert_allclose(d.X_val[0] * 255, images[8000].ravel(), atol=1e-3)
    files = d.metadata["files"]
    assert set(files) == set(FILE_NAMES)
    assert not files["train-images-idx3-ubyte"]["canonical"]  # it is our subset


def test_mnist_shared_split_is_the_canonical_one(shared_mnist, tmp_path):
    # the shared copy is read-only: the loader works without writing a cache there
    root = tmp_path / "m"
    root.mkdir()
    for name in T10K:
        shutil.copy(shared_mnist / name, root)
        shutil.copy(shared_mnist / name, root / name.replace("t10k", "train"))
    d = load_dataset("mnist", root=root, download=False, test_size=100)
    info = d.metadata["files"]["t10k-images-idx3-ubyte"]
    assert info["canonical"]
    assert info["sha256"] == "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    assert d.metadata["class_counts_train"] == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert round(float(d.X_train.mean() * 255), 2) == 33.79


def test_mnist_stratified_subset_and_determinism(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    root = write_pair(tmp_path, images, labels, 8000, True)
    d = load_dataset("mnist", root=root, download=False, train_size=1000, test_size=300, seed=3)
    expected = 1000 * np.bincount(labels[:8000], minlength=10) / 8000
    counts = np.array(d.metadata["class_counts_train"])
    assert counts.sum() == 1000 and np.all(np.abs(counts - expected) <= 1), (counts, expected)
    assert d.X_val.shape == (300, 784)
    same = load_dataset("mnist", root=root, download=False, train_size=1000, test_size=300, seed=3)
    assert np.array_equal(same.X_train, d.X_train) and np.array_equal(same.y_val, d.y_val)
    other = load_dataset("mnist", root=root, download=False, train_size=1000, test_size=300, seed=4)
    assert not np.array_equal(other.X_train, d.X_train)
    # a subset's classes are mixed, not sorted
    assert len(set(d.y_train[:20].argmax(axis=1).tolist())) > 3


def test_mnist_standardise(tmp_path, mnist_arrays):
    root = write_pair(tmp_path, *mnist_arrays, 8000, True)
    d = load_dataset("mnist", root=root, download=False, normalize="standard")
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-9)
    varying = d.X_train.std(axis=0) > 0
    np.testing.assert_allclose(d.X_train.std(axis=0)[varying], 1, rtol=1e-6)


def test_mnist_cache_is_used_and_invalidated(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    root = write_pair(tmp_path, images, labels, 8000, True)
    first = load_dataset("mnist", root=root, download=False)
    assert cache_path(root, "train").is_file() and cache_path(root, "test").is_file()
    cached = load_dataset("mnist", root=root, download=False)
    assert np.array_equal(cached.X_train, first.X_train)
    # replace the training files with different ones: the cache must not be served
    time.sleep(0.01)
    write_idx(root / "train-images-idx3-ubyte.gz", images[2000:9000])
    write_idx(root / "train-labels-idx1-ubyte.gz", labels[2000:9000])
    fresh = load_dataset("mnist", root=root, download=False)
    assert fresh.X_train.shape == (7000, 784)
    np.testing.assert_array_equal(fresh.y_train.argmax(axis=1), labels[2000:9000])
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "damage,match",
    [
        (lambda b: b[: len(b) // 2], "truncated or corrupt"),
        (lambda b: b"\x00\x00\x08\x07" + b[4:], "bad IDX magic number"),
        (lambda b: b[:-1], "truncated or corrupt"),
        (lambda b: b + b"\x00" * 10, "truncated or corrupt"),
    ],
)
def test_corrupt_and_truncated_files_name_the_file(tmp_path, mnist_arrays, damage, match):
    root = write_pair(tmp_path, *mnist_arrays, 8000, False)
    path = root / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(IDXError, match=match) as info:
        load_dataset("mnist", root=root, download=False)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path, mnist_arrays):
    root = write_pair(tmp_path, *mnist_arrays, 8000, True)
    path = root / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(IDXError, match="corrupt or truncated gzip") as info:
        load_dataset("mnist", root=root, download=False)
    assert str(path) in str(info.value)


def test_mismatched_image_and_label_counts(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    root = write_pair(tmp_path, images, labels, 8000, True)
    write_idx(root / "train-labels-idx1-ubyte.gz", labels[:7999])
    with pytest.raises(MNISTError, match=r"8000 images but .* 7999 labels"):
        load_dataset("mnist", root=root, download=False)


def test_offline_directory_says_what_to_put_where(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(MNISTError) as info:
        load_dataset("mnist", root=root, download=False)
    message = str(info.value)
    assert str(root) in message and "\n" not in message
    for name in FILE_NAMES:
        assert name in message


def test_default_root_comes_from_bpexp_data_dir(tmp_path, mnist_arrays, monkeypatch):
    write_pair(tmp_path / "mnist", *mnist_arrays, 9000, True)
    monkeypatch.setenv("BPEXP_DATA_DIR", str(tmp_path))
    d = load_dataset("mnist", download=False)
    assert d.metadata["root"] == str(tmp_path / "mnist") and d.X_val.shape[0] == 1000


# -------------------------------------------------------------- downloads
class _Server(LocalHTTPServer):
    """A real HTTP server on 127.0.0.1 serving a directory (optionally stalling)."""

    def __init__(self, directory: Path, stall: bool = False):
        super().__init__(_stalling_handler if stall else _quiet_handler(directory))


def _quiet_handler(directory: Path):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(directory), **kw)

        def log_message(self, *args):
            pass

    return Handler


class _stalling_handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(5)

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path, shared_mnist):
    """A mirror with the real (canonical) test files, and a data root that already
    holds training files, so that only the two t10k files are downloaded."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in T10K:
        shutil.copy(shared_mnist / name, mirror / name)
    root = tmp_path / "data"
    root.mkdir()
    images = read_idx(shared_mnist / "t10k-images-idx3-ubyte.gz", 3)
    labels = read_idx(shared_mnist / "t10k-labels-idx1-ubyte.gz", 1)
    write_idx(root / "train-images-idx3-ubyte.gz", images[:5000])
    write_idx(root / "train-labels-idx1-ubyte.gz", labels[:5000])
    return mirror, root


def test_download_from_a_local_mirror(served):
    mirror, root = served
    with _Server(mirror) as server:
        d = load_dataset("mnist", root=root, mirrors=[server.url], test_size=500)
    assert (root / "t10k-images-idx3-ubyte.gz").is_file()
    assert d.metadata["files"]["t10k-labels-idx1-ubyte"]["canonical"]
    assert d.X_val.shape == (500, 784)
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []


def test_a_corrupted_download_is_rejected_and_leaves_nothing(served):
    mirror, root = served
    bad = mirror / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(bad.read_bytes()))
    raw[5000] ^= 0xFF  # one flipped byte: a valid IDX file, a wrong checksum
    bad.write_bytes(gzip.compress(bytes(raw)))
    with _Server(mirror) as server, pytest.raises(MNISTError) as info:
        load_dataset("mnist", root=root, mirrors=[server.url])
    message = str(info.value)
    assert "checksum mismatch" in message and server.url in message and "\n" not in message
    assert not (root / "t10k-images-idx3-ubyte.gz").exists()
    # nothing half-written, nothing unverified: the directory is as it was
    assert sorted(p.name for p in root.iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]


def test_a_missing_file_on_the_first_mirror_falls_back_to_the_next(served, tmp_path):
    mirror, root = served
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    with _Server(empty) as first, _Server(mirror) as second:
        d = load_dataset("mnist", root=root, mirrors=[first.url, second.url], test_size=100)
    assert d.X_val.shape == (100, 784)


def test_a_stalled_mirror_times_out(served):
    _, root = served
    with _Server(root, stall=True) as server:
        t0 = time.monotonic()
        with pytest.raises(MNISTError, match="timed out"):
            load_dataset("mnist", root=root, mirrors=[server.url], timeout=0.5)
        assert time.monotonic() - t0 < 4


def test_an_unreachable_mirror_fails_fast(served):
    _, root = served
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MNISTError, match="could not download"):
        load_dataset("mnist", root=root, mirrors=[f"http://127.0.0.1:{port}/"], timeout=2)


# ------------------------------------------------------- the whole pipeline
@pytest.mark.slow
def test_mnist_784_30_10_learns_from_real_images(tmp_path, mnist_arrays):
    root = write_pair(tmp_path, *mnist_arrays, 8000, True)
    d = load_dataset("mnist", root=root, download=False, seed=0)
    assert (d.X_train.shape, d.X_val.shape) == ((8000, 784), (2000, 784))
    net = MLP([784, 30, 10], activation="sigmoid", output="softmax", init="lecun_normal", seed=0)
    h = fit(
        net,
        d.X_train,
        d.y_train,
        variant="mbgd",
        batch_size=10,
        lr=0.5,
        epochs=5,
        loss="cross_entropy",
        X_val=d.X_val,
        Y_val=d.y_val,
    )
    assert h.records[-1]["val_accuracy"] > 0.85, h.records[-1]
    assert hashlib.sha256(d.X_val.tobytes()).hexdigest()  # real data, not a stand-in


# ------------------------------------------------- MNIST from the test split
def row_indices(X: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Which images of the test split the rows of X are (pixels scaled back to 0-255)."""
    where = {img.tobytes(): i for i, img in enumerate(images.reshape(len(images), -1))}
    assert len(where) == len(images)  # every test image is distinct: rows identify them
    return np.array([where[r.tobytes()] for r in np.rint(X * 255).astype(np.uint8)])


def test_mnist_test_split_subsets_are_disjoint_stratified_and_recorded(t10k_only, mnist_arrays):
    images, labels = mnist_arrays
    d = load_dataset(
        "mnist", root=t10k_only, source="test_split", train_size=3000, test_size=1000, seed=5
    )
    assert (d.X_train.shape, d.X_val.shape) == ((3000, 784), (1000, 784))
    train, val = row_indices(d.X_train, images), row_indices(d.X_val, images)
    assert len(set(train)) == 3000 and len(set(val)) == 1000
    assert not set(train) & set(val)
    np.testing.assert_array_equal(d.y_train.argmax(axis=1), labels[train])
    share = np.bincount(labels, minlength=10) / len(labels)
    for idx, size in ((train, 3000), (val, 1000)):
        assert np.all(np.abs(np.bincount(labels[idx], minlength=10) - size * share) <= 1)
    meta = d.metadata
    assert meta["source"] == "test_split"
    assert set(meta["files"]) == {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
    for key, idx in (("train_indices", train), ("val_indices", val)):
        record = meta[key]
        assert (record["split"], record["n"]) == ("test", len(idx))
        # the recorded checksum is the recipe it states, applied to the rows used
        assert record["sha256"] == hashlib.sha256(idx.astype("<i8").tobytes()).hexdigest()
    same = load_dataset(
        "mnist", root=t10k_only, source="test_split", train_size=3000, test_size=1000, seed=5
    )
    assert same.metadata["train_indices"] == meta["train_indices"]
    assert np.array_equal(same.X_val, d.X_val)
    other = load_dataset(
        "mnist", root=t10k_only, source="test_split", train_size=3000, test_size=1000, seed=6
    )
    assert other.metadata["val_indices"]["sha256"] != meta["val_indices"]["sha256"]


def test_mnist_test_split_without_train_size_trains_on_the_rest(t10k_only):
    d = load_dataset("mnist", root=t10k_only, source="test_split", test_size=2500, seed=0)
    assert (len(d.X_train), len(d.X_val)) == (7500, 2500)


def test_auto_uses_the_test_split_when_only_its_files_are_there(t10k_only, caplog):
    # a mirror nobody serves: any download attempt (of the training files) would fail
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with caplog.at_level("INFO", logger="bpexp"):
        d = load_dataset(
            "mnist", root=t10k_only, mirrors=[dead], timeout=1, train_size=800, test_size=200
        )
    assert d.metadata["source"] == "test_split"
    (line,) = [r.getMessage() for r in caplog.records if "source=auto" in r.getMessage()]
    assert str(t10k_only) in line and "t10k" in line and "test split" in line
    assert sorted(p.name for p in t10k_only.iterdir() if "train" in p.name) == []


def test_auto_prefers_the_training_split_when_its_files_are_there(tmp_path, mnist_arrays):
    root = write_pair(tmp_path, *mnist_arrays, 8000, True)
    d = load_dataset("mnist", root=root, train_size=1000, test_size=500)
    assert d.metadata["source"] == "train"
    assert (d.metadata["train_indices"]["split"], d.metadata["val_indices"]["split"]) == (
        "train",
        "test",
    )


@pytest.mark.parametrize(
    "options,match",
    [
        (
            {"train_size": 9000, "test_size": 2000},
            "train_size: 9000 is more than the 8000 samples available (the 10000 images of "
            "the test split less test_size 2000)",
        ),
        ({"train_size": 100, "test_size": None}, "test_size: null (the whole test split)"),
        ({"test_size": 10000}, "test_size: 10000 leaves no training samples"),
        ({"source": "both"}, "source: must be one of auto, train, test_split, got 'both'"),
    ],
)
def test_test_split_bad_sizes_give_one_line(t10k_only, options, match):
    with pytest.raises(ValueError, match=re.escape(match)) as info:
        load_dataset("mnist", root=t10k_only, **{"source": "test_split", **options})
    assert "\n" not in str(info.value)


def test_source_train_without_the_training_files_says_what_to_do(t10k_only):
    with pytest.raises(MNISTError) as info:
        load_dataset("mnist", root=t10k_only, source="train", download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "source=test_split" in message
    assert "\n" not in message


def test_a_read_only_root_is_read_but_never_written(t10k_only, caplog):
    # like ../shared/data/mnist: no write permission bits (root could write anyway)
    t10k_only.chmod(0o555)
    try:
        with caplog.at_level("WARNING", logger="bpexp"):
            for seed in (0, 1):
                d = load_dataset("mnist", root=t10k_only, test_size=500, seed=seed)
        assert d.metadata["source"] == "test_split" and len(d.X_train) == 9500
        (warning,) = [r.getMessage() for r in caplog.records]  # one, for both runs
        assert f"{t10k_only} is read-only" in warning and "make it writable" in warning
        assert sorted(p.name for p in t10k_only.iterdir()) == sorted(T10K)
        with pytest.raises(MNISTError, match="read-only") as info:
            load_dataset("mnist", root=t10k_only, source="train")
        assert "\n" not in str(info.value)
    finally:
        t10k_only.chmod(0o755)
    load_dataset("mnist", root=t10k_only, test_size=500, seed=0)
    assert cache_path(t10k_only, "test").is_file()  # writable again: cached


# ------------------------------------------------------ the decoded-array cache
def _flip_a_byte(raw: bytes) -> bytes:
    at = len(raw) // 2  # inside the stored images array
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]


def _shift_labels(path: Path) -> bytes:
    """The cache with its labels shifted by one sample, everything else (fingerprint,
    recorded checksums) as it was: what no fingerprint can notice."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["labels"] = np.roll(arrays["labels"], 1)
    path.unlink()
    np.savez(path, **arrays)
    return path.read_bytes()


def _wrong_arrays(path: Path) -> bytes:
    path.unlink()
    np.savez(path, x=np.zeros(3), fingerprint=np.array("anything"))
    return path.read_bytes()


@pytest.mark.parametrize(
    "damage,problem",
    [
        (lambda p: p.read_bytes()[: p.stat().st_size // 2], "unreadable"),
        (lambda p: _flip_a_byte(p.read_bytes()), "unreadable: Bad CRC-32"),
        (lambda p: b"", "unreadable"),
        (_wrong_arrays, "it lacks images, labels, t10k-images"),
        (_shift_labels, "its labels do not match the SHA-256 recorded with them"),
    ],
    ids=["truncated", "bit-flipped", "empty", "wrong-arrays", "shifted-labels"],
)
def test_a_damaged_cache_is_rebuilt_with_one_warning_naming_it(
    t10k_only, mnist_arrays, caplog, damage, problem
):
    _, labels = mnist_arrays
    options = {"root": t10k_only, "source": "test_split", "test_size": 500, "seed": 0}
    first = load_dataset("mnist", **options)
    cache = cache_path(t10k_only, "test")
    cache.write_bytes(damage(cache))
    with caplog.at_level("WARNING", logger="bpexp"):
        again = load_dataset("mnist", **options)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"the cache {cache} was damaged ({problem}" in warning and "rebuilt it" in warning
    assert "\n" not in warning
    # the run trained on the true labels, and the cache holds them again
    np.testing.assert_array_equal(again.y_train, first.y_train)
    with np.load(cache) as z:
        np.testing.assert_array_equal(z["labels"], labels)
    caplog.clear()
    with caplog.at_level("WARNING", logger="bpexp"):
        load_dataset("mnist", **options)
    assert caplog.records == []
    assert sorted(p.name for p in t10k_only.iterdir()) == sorted([*T10K, cache.name])


def test_a_file_replaced_with_the_same_size_and_time_is_not_served_from_the_cache(
    tmp_path, mnist_arrays
):
    images, labels = mnist_arrays
    root = write_pair(tmp_path, images, labels, 8000, gz=False)
    load_dataset("mnist", root=root, download=False)
    path = root / "train-labels-idx1-ubyte"
    stat = path.stat()
    shifted = np.roll(labels[:8000], 1)  # same size; then the same modification time
    write_idx(path, shifted)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    d = load_dataset("mnist", root=root, download=False)
    np.testing.assert_array_equal(d.y_train.argmax(axis=1), shifted)


#: loads the test split from the root given as argv[1] twice, warnings to stderr
LOAD_TWICE = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
from bpexp.data import load_dataset
for seed in (0, 1):
    d = load_dataset("mnist", root=sys.argv[1], source="test_split", test_size=500, seed=seed)
print(len(d.X_train))
"""


def _load_limited(root: Path, max_file_size: int, die: bool) -> subprocess.CompletedProcess:
    """LOAD_TWICE in a process that may write no file beyond ``max_file_size`` bytes: the
    kernel refuses the write (EFBIG, as a full disk refuses it with ENOSPC), or with ``die``
    kills the writer there (SIGXFSZ's default action)."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, resource.RLIM_INFINITY))

    # Python ignores SIGXFSZ from its start; the script restores its default action
    restore = "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n" if die else ""
    return subprocess.run(
        [sys.executable, "-c", restore + LOAD_TWICE, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )


def test_a_cache_that_cannot_be_written_never_fails_the_run(t10k_only):
    result = _load_limited(t10k_only, 1 << 20, die=False)
    assert result.returncode == 0 and result.stdout.split() == ["9500"], result.stderr
    cache = cache_path(t10k_only, "test")
    # one line for both loads, naming the cache, why and what to do
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"WARNING MNIST: not caching the decoded arrays in {cache}: ")
    assert "writing it failed (File too large)" in line and "free space" in line
    assert sorted(p.name for p in t10k_only.iterdir()) == sorted(T10K)  # no partial file


def test_a_writer_killed_half_way_leaves_no_partial_cache(t10k_only):
    killed = _load_limited(t10k_only, 1 << 20, die=True)
    assert killed.returncode == -signal.SIGXFSZ, killed.stderr
    cache = cache_path(t10k_only, "test")
    assert not cache.exists()
    (left,) = [p for p in t10k_only.iterdir() if p.name not in T10K]
    assert left.name.startswith(f".{cache.name}.") and left.stat().st_size <= 1 << 20
    # the next run caches normally; once old, the killed writer's temporary file goes too
    os.utime(left, (time.time() - STALE_TMP_AGE - 60,) * 2)
    d = load_dataset("mnist", root=t10k_only, source="test_split", test_size=500)
    assert len(d.X_train) == 9500 and cache_problem(dict(np.load(cache)), "test") is None
    assert sorted(p.name for p in t10k_only.iterdir()) == sorted([*T10K, cache.name])


def test_a_read_only_file_system_is_read_with_one_warning(t10k_only):
    """A real read-only mount, in a private mount namespace (nothing outside sees it)."""
    root = shlex.quote(str(t10k_only))
    mount_ro = f"mount --bind {root} {root} && mount -o remount,bind,ro {root}"
    unshare = shutil.which("unshare")
    probe = unshare and subprocess.run(
        [unshare, "-rm", "sh", "-c", f"{mount_ro} && ! touch {root}/x 2>/dev/null"],
        capture_output=True,
        text=True,
    )
    if not probe or probe.returncode != 0:
        why = probe.stderr.strip() if probe else "util-linux's unshare is not installed"
        pytest.skip(f"this system cannot make a private read-only mount: {why}")
    script = f"{mount_ro} && exec {shlex.quote(sys.executable)} -c {shlex.quote(LOAD_TWICE)} {root}"
    result = subprocess.run(
        [unshare, "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.split() == ["9500"], result.stderr
    (line,) = result.stderr.splitlines()
    cache = cache_path(t10k_only, "test")
    assert line == (
        f"WARNING MNIST: not caching the decoded arrays in {cache}: {t10k_only} is read-only; "
        "each run decodes the IDX files (make it writable to cache them)"
    )
    assert sorted(p.name for p in t10k_only.iterdir()) == sorted(T10K)


@pytest.mark.parametrize("where", ["under-a-file", "a-file"])
def test_a_root_that_cannot_be_a_directory_is_one_line(tmp_path, where):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    root = blocker / "mnist" if where == "under-a-file" else blocker
    with pytest.raises(MNISTError) as info:
        load_dataset("mnist", root=root, mirrors=["http://127.0.0.1:9/"], timeout=1)
    message = str(info.value)
    assert f"is not in {root}, which cannot be created" in message and "\n" not in message
    assert "point dataset.root at a directory" in message
