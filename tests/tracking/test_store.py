"""Every store checked before the first job, in seconds, with one line; no password shown."""

from __future__ import annotations

import time

import pytest

from bpexp.tracking.store import TrackingError, check_store, masked
from tests.helpers import bpexp, free_port


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("bogus://somewhere", "is not a store bpexp can use"),
        ("file:///tmp/mlruns", "is not a store bpexp can use"),
        ("mlruns", "is not a store bpexp can use"),
        ("sqlite:////nonexistent-dir/x/mlflow.db", "/nonexistent-dir/x does not exist"),
    ],
)
def test_a_store_that_cannot_be_used_stops_the_command_before_any_job(tmp_path, uri, said):
    for args in ([], ["-m", "seed=0,1"]):
        t0 = time.monotonic()
        result = bpexp(*args, f"tracking.uri={uri}", "trainer.epochs=100000", cwd=tmp_path)
        assert result.returncode == 1
        assert time.monotonic() - t0 < 60  # no job trained its 100,000 epochs
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert said in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(lines) == 1, result.stderr
        assert not list(tmp_path.glob("outputs/*/*/artifacts/history.csv"))


def test_an_unreachable_database_is_one_masked_line_in_seconds():
    uri = f"postgresql://user:s3cret@127.0.0.1:{free_port()}/db"
    t0 = time.monotonic()
    with pytest.raises(TrackingError) as info:
        check_store(uri)
    assert time.monotonic() - t0 < 30
    message = str(info.value)
    assert "cannot reach the database" in message and "s3cret" not in message
    assert masked(uri) in message


def test_a_sqlite_store_under_a_file_is_refused(tmp_path):
    (tmp_path / "plain").write_text("not a directory")
    with pytest.raises(TrackingError, match="does not exist"):
        check_store(f"sqlite:///{tmp_path}/plain/mlflow.db")


def test_masking():
    assert masked("http://u:pw@h:5000/x") == "http://u:***@h:5000/x"
    assert masked("postgresql://u:p%40ss@db/x and sqlite:///a.db") == (
        "postgresql://u:***@db/x and sqlite:///a.db"
    )
    assert masked("http://h:5000") == "http://h:5000"


def test_a_password_never_reaches_a_file_or_the_screen_when_the_store_is_down(tmp_path):
    secret = "s3cr3t-Pw"
    result = bpexp(f"tracking.uri=http://user:{secret}@127.0.0.1:{free_port()}", cwd=tmp_path)
    assert result.returncode == 1 and "user:***@127.0.0.1" in result.stderr
    assert secret not in result.stdout + result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written  # Hydra's record of the job (.hydra/*.yaml), its password masked
    assert not [p for p in written if secret in p.read_text("latin-1")]
