"""A run stopped and resumed from its checkpoint is the run never stopped, bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bpexp.core import MLP, fit
from bpexp.core.optim import make_update
from bpexp.core.training import Checkpoint
from tests.conftest import XOR_X, XOR_Y

TOY_X = np.random.default_rng(7).normal(size=(13, 3))
TOY_Y = (TOY_X[:, :1] * TOY_X[:, 1:2] > 0).astype(float)


def _run(variant, update, schedule, train_eval, epochs, **kw):
    rng = np.random.default_rng(3)
    net = MLP([3, 5, 1], activation="tanh", rng=rng)
    options = dict(variant=variant, lr=0.3, batch_size=4, epochs=epochs, update=update,
                   schedule=schedule, step_size=3, train_eval=train_eval, rng=rng,
                   X_val=TOY_X[:5], Y_val=TOY_Y[:5], divergence_factor=None)  # fmt: skip
    return net, fit(net, TOY_X, TOY_Y, **options, **kw)


CASES = [
    *itertools.product(("bgd", "sgd", "mbgd"), ("plain", "adam"), ("step",), ("full",)),
    ("mbgd", "nesterov", "constant", "running"),
    ("bgd", "momentum", "exponential", "running"),
]


@pytest.mark.parametrize(("variant", "update", "schedule", "train_eval"), CASES)
def test_resuming_from_a_checkpoint_gives_the_uninterrupted_run(
    variant, update, schedule, train_eval, tmp_path
):
    whole_net, whole = _run(variant, update, schedule, train_eval, 12)

    # the same run, stopped after epoch 7 (a checkpoint taken at every epoch's end)
    taken: list[Checkpoint] = []
    records: list[dict] = []

    def stop_at_7(record):
        records.append(record)
        return record["epoch"] == 7

    _run(variant, update, schedule, train_eval, 12, callback=stop_at_7,
         checkpoint=taken.append, checkpoint_every=0.0)  # fmt: skip
    assert [c.epoch for c in taken] == list(range(1, 7))  # the stopping epoch takes none
    path = taken[-1].save(tmp_path / "checkpoint.npz")
    saved = Checkpoint.load(path)
    assert saved.epoch == 6

    # a new process's view: a network drawn afresh, the records read back
    seen = []
    resumed_net, resumed = _run(
        variant, update, schedule, train_eval, 12,
        resume=saved, resume_records=records[:7], callback=seen.append,
    )  # fmt: skip
    assert [r["epoch"] for r in seen] == list(range(7, 13))  # only the epochs trained now
    for a, b in zip(whole_net.weights + whole_net.biases, resumed_net.weights + resumed_net.biases):
        np.testing.assert_array_equal(a, b)
    assert len(resumed.records) == len(whole.records) == 12
    for a, b in zip(whole.records, resumed.records):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }
    assert resumed.initial == whole.initial
    assert resumed.best_loss == whole.best_loss
    assert resumed.records[5] == records[6]  # epoch 6, taken as it was
    assert resumed.records[6]["seconds"] > records[6]["seconds"]  # time goes on from there


def test_a_checkpoint_copies_the_state_it_was_taken_from():
    rng = np.random.default_rng(0)
    net = MLP([2, 3, 1], rng=rng)
    update = make_update("adam", net.weights + net.biases)
    c = Checkpoint.take(4, net, update, rng, 1.5)
    before = [p.copy() for p in c.params]
    fit(net, XOR_X, XOR_Y, variant="sgd", epochs=3, rng=rng)
    rng.permutation(4)
    assert all(np.array_equal(a, b) for a, b in zip(before, c.params))
    assert c.rng != rng.bit_generator.state


def test_resuming_checks_the_shapes_and_the_records():
    rng = np.random.default_rng(0)
    net = MLP([2, 3, 1], rng=rng)
    taken = []
    records = []
    fit(net, XOR_X, XOR_Y, epochs=3, rng=rng, checkpoint=taken.append, callback=records.append)
    other = MLP([2, 4, 1], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"resume: the checkpoint's parameters have shapes"):
        fit(other, XOR_X, XOR_Y, epochs=5, resume=taken[0], resume_records=records)
    with pytest.raises(ValueError, match=r"records of epochs 0 to 1 .* stop at epoch 0"):
        fit(MLP([2, 3, 1]), XOR_X, XOR_Y, epochs=5, resume=taken[0], resume_records=records[:1])
    with pytest.raises(ValueError, match="none were given"):
        fit(MLP([2, 3, 1]), XOR_X, XOR_Y, epochs=5, resume=taken[0])
