"""A job's files: streamed, whole or absent, readable back exactly."""

from __future__ import annotations

import itertools
import math

import pytest

from bpexp.tracking.files import (
    HistoryWriter,
    flatten,
    logged_epochs,
    read_history,
    recover_history,
    write_atomic,
)


def records(n: int) -> list[dict]:
    first = {"epoch": 0, "train_loss": 0.25, "train_accuracy": 0.5}
    rest = [
        {"epoch": e, "train_loss": 0.25 / (e + 1) + 1e-17 * e, "train_accuracy": 0.75,
         "grad_norm": 1 / 3, "updates": e, "seconds": e * 1e-3}
        for e in range(1, n + 1)
    ]  # fmt: skip
    return [first, *rest]


def test_the_history_is_on_disk_while_the_run_trains_and_whole_at_its_end(tmp_path):
    writer = HistoryWriter(tmp_path)
    writer.FLUSH_EVERY = 0.0  # every row reaches the file at once
    rs = records(50)
    for r in rs[:20]:
        writer.write(r)
    assert not (tmp_path / "history.csv").exists()  # never under its final name half-written
    lines = (tmp_path / "history.csv.part").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,train_accuracy,grad_norm,updates,seconds"
    assert len(lines) >= 1 + 19  # every row but perhaps the last one written
    for r in rs[20:]:
        writer.write(r)
    writer.close()
    assert not (tmp_path / "history.csv.part").exists()
    back = read_history(tmp_path / "history.csv")
    assert [b["epoch"] for b in back] == list(range(51))  # counts as ints, as fit made them
    # floats round-trip exactly; a measure epoch 0 lacks is left out of its row
    assert all(b["train_loss"] == r["train_loss"] for b, r in zip(back, rs, strict=True))
    assert "grad_norm" not in back[0] and back[1]["grad_norm"] == 1 / 3


def test_reading_chosen_epochs_parses_only_those_and_the_last(tmp_path):
    writer = HistoryWriter(tmp_path)
    for r in records(100):
        writer.write(r)
    writer.close()
    back = read_history(tmp_path / "history.csv", {0, 10, 55})
    assert [b["epoch"] for b in back] == [0, 10, 55, 100]


def test_a_killed_jobs_history_is_recovered_without_its_cut_line(tmp_path):
    (tmp_path / "history.csv.part").write_text("epoch,train_loss\n0,0.25\n1,0.125\n2,0.0")
    assert recover_history(tmp_path)
    assert (tmp_path / "history.csv").read_text() == "epoch,train_loss\n0,0.25\n1,0.125\n"
    assert not recover_history(tmp_path)  # nothing left to recover


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    write_atomic(path, "old")

    with pytest.raises(TypeError):
        write_atomic(path, 12345)  # not text nor bytes: fails mid-write
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_flatten_and_thinning():
    assert flatten({"a": {"b": 1, "c": None}, "d": [1, 2]}) == {"a.b": "1", "a.c": "null",
                                                               "d": "[1, 2]"}  # fmt: skip
    assert logged_epochs(10, 100) == set(range(11))
    chosen = logged_epochs(10_000, 100)
    assert len(chosen) == 100 and {0, 10_000} <= chosen
    gaps = sorted(chosen)
    assert max(b - a for a, b in itertools.pairwise(gaps)) <= math.ceil(10_000 / 99)
