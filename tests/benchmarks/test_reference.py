"""benchmarks/reference.py, the plain script bpexp's speed is judged against (issue 13),
logs what a bpexp sweep logs; if bpexp's runs change, the comparison must change too."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT
from tests.helpers import bpexp, command_env, runs

#: fewer epochs than XOR's 5,000 but more than tracking.max_points, so that the
#: points are thinned; no run reaches the 0.01 threshold by then
EPOCHS = 300
TIMINGS = {"seconds", "train_seconds", "wall_seconds"}


def children(uri: str, experiment: str) -> dict[str, tuple]:
    """Each child run by name: (params, {metric: [(step, value)]}, artifact names)."""
    client = MlflowClient(uri)
    found = runs(uri, experiment)
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and all(r.info.status == "FINISHED" for r in found)
    out = {}
    for r in found:
        if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id:
            history = {
                k: [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, k)]
                for k in r.data.metrics
            }
            artifacts = sorted(a.path for a in client.list_artifacts(r.info.run_id))
            out[r.info.run_name] = (r.data.params, history, artifacts)
    return out


@pytest.mark.slow
def test_reference_logs_the_runs_bpexp_logs(tmp_path):
    (tmp_path / "bpexp").mkdir()
    (tmp_path / "reference").mkdir()
    out = bpexp("-m", "optimizer=bgd,sgd,mbgd", f"trainer.epochs={EPOCHS}", cwd=tmp_path / "bpexp")
    assert out.returncode == 0, out.stderr
    script = [sys.executable, str(ROOT / "benchmarks" / "reference.py")]
    out = subprocess.run(
        # a sweep's jobs draw no figure (tracking.log_figure=auto)
        [*script, "--jobs", "3", "--epochs", str(EPOCHS), "--experiment", "bpexp", "--no-figure"],
        cwd=tmp_path / "reference", env=command_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    theirs = children(f"sqlite:///{tmp_path / 'bpexp' / 'mlflow.db'}", "bpexp")
    ours = children(f"sqlite:///{tmp_path / 'reference' / 'mlflow.db'}", "bpexp")
    assert sorted(ours) == sorted(theirs) == ["optimizer=bgd", "optimizer=mbgd", "optimizer=sgd"]
    for name, (params, history, artifacts) in ours.items():
        their_params, their_history, their_artifacts = theirs[name]
        assert params == their_params
        assert artifacts == their_artifacts
        assert history.keys() == their_history.keys()
        for key, points in history.items():
            steps = [s for s, _ in points]
            assert steps == [s for s, _ in their_history[key]], key
            if key not in TIMINGS:  # the same network, data and order: the same numbers
                values = [v for _, v in their_history[key]]
                assert [v for _, v in points] == pytest.approx(values, rel=1e-9, abs=1e-12), key
        assert len(history["train_loss"]) == 100  # thinned to tracking.max_points
