"""``python -m bpexp``: one Hydra-configured training job, tracked in MLflow.

``python -m bpexp`` trains once; ``python -m bpexp -m KEY=A,B ...`` sweeps.  See
the README for the configuration keys.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bpexp import tracking
from bpexp.config import ConfigError, JobError, dataset_options, hidden_sizes, validate
from bpexp.core import MLP, History, fit
from bpexp.data import Dataset, load_dataset

log = logging.getLogger("bpexp")

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _progress(cfg: DictConfig, multirun: bool):
    """A tqdm bar on an interactive terminal for a single run (``trainer.progress``)."""
    show = cfg.trainer.progress
    if show == "auto":
        show = not multirun and sys.stderr.isatty()
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.trainer.epochs, unit="epoch", desc=cfg.dataset.name, leave=True)


def train(cfg: DictConfig, callback=None) -> tuple[Dataset, MLP, History, float]:
    """Load the data, build the network and train it as a validated ``cfg`` says.

    Returns the data set, the trained network, its history and the seconds
    :func:`bpexp.core.fit` took.  Nothing here is tracked.
    """
    rng = np.random.default_rng(cfg.seed)
    try:
        data = load_dataset(
            cfg.dataset.name, rng=rng, dtype=cfg.model.dtype, **dataset_options(cfg)
        )
    except ValueError as exc:
        raise JobError(f"dataset {cfg.dataset.name}: {exc}") from exc
    m, o, t = cfg.model, cfg.optimizer, cfg.trainer
    net = MLP(
        [data.n_features, *hidden_sizes(cfg), data.n_outputs],
        activation=m.activation,
        output=m.output,
        init=m.init,
        bias_init=m.bias_init,
        dtype=m.dtype,
        bias=m.bias,
        leaky_slope=m.leaky_slope,
        rng=rng,
    )
    validation = {} if data.val_is_train else {"X_val": data.X_val, "Y_val": data.y_val}
    t0 = time.perf_counter()
    history = fit(
        net,
        data.X_train,
        data.y_train,
        variant=o.variant,
        lr=o.lr,
        batch_size=o.batch_size,
        epochs=t.epochs,
        loss=t.loss,
        update=o["update"],  # DictConfig.update is a method
        momentum=o.momentum,
        beta1=o.beta1,
        beta2=o.beta2,
        epsilon=o.epsilon,
        schedule=o.schedule,
        gamma=o.gamma,
        step_size=o.step_size,
        decay=o.decay,
        loss_threshold=t.loss_threshold,
        train_eval=t.train_eval,
        rng=rng,
        callback=callback,
        **validation,
    )
    return data, net, history, time.perf_counter() - t0


def run_job(cfg: DictConfig) -> float:
    """Train one network as ``cfg`` says and track it; returns the final training loss."""
    validate(cfg)  # before anything is tracked: one line naming the key
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    parent = tracking.read_parent(hc.sweep.dir) if multirun else None
    output_dir = Path(hc.runtime.output_dir)
    tags = {
        "dataset": cfg.dataset.name,
        "variant": cfg.optimizer.variant,
        "hydra.output_dir": str(output_dir),
        "bpexp.role": "job",
        "mlflow.source.name": "bpexp",
    }
    if commit := tracking.git_commit():
        tags["git_commit"] = tags["mlflow.source.git.commit"] = commit
    choices = {
        group: str(choice)
        for group, choice in hc.runtime.choices.items()
        if choice is not None and not group.startswith("hydra/")
    }
    run_name = hc.job.override_dirname or (f"job {hc.job.num}" if multirun else "run")
    tracker = tracking.RunTracker(
        cfg,
        run_name=run_name,
        output_dir=output_dir,
        tags=tags,
        parent=parent,
        extra_params=choices,
    )
    with tracker.guard():
        bar = _progress(cfg, multirun)
        callback = tracker.on_epoch
        if bar is not None:

            def callback(record: dict) -> None:
                tracker.on_epoch(record)
                if record["epoch"]:
                    bar.update(1)
                    if record["epoch"] % 50 == 0 or record["epoch"] == cfg.trainer.epochs:
                        bar.set_postfix_str(f"loss={record['train_loss']:.4g}", refresh=False)

        try:
            data, net, history, wall = train(cfg, callback)
        finally:
            if bar is not None:
                bar.close()
        summary = tracker.finish(history, net, data.metadata, wall)
    log.info(
        "run %s: %s, loss %.4g -> %.4g in %d epochs (%s), training %.2f s",
        tracker.run_id,
        run_name,
        summary["initial_loss"],
        summary["final_loss"],
        summary["epochs_run"],
        history.stop_reason,
        wall,
    )
    final = history.final_loss
    return final if math.isfinite(final) else math.inf


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    try:
        return run_job(cfg)
    except (ConfigError, JobError, tracking.TrackingUnavailable) as exc:
        # Hydra reports only a sweep's first failure at its end: say each one as it happens
        log.error("%s", exc)
        raise
    except Exception:
        log.exception("job failed")
        raise


def main() -> None:
    """Entry point: prepares what every job shares, runs Hydra, closes the sweep's parent run.

    Hydra does not call ``on_multirun_end`` when a job failed, so the parent run
    a multirun created is closed here whatever happened: FINISHED only when every
    job finished, FAILED otherwise, KILLED on Ctrl-C.
    """
    os.environ["BPEXP_LAUNCH_DIR"] = os.getcwd()
    # which process launched the jobs: see tracking.tracking_process_enabled
    os.environ["BPEXP_LAUNCH_PID"] = str(os.getpid())
    # One stamp per invocation, inherited by worker processes: sweep and run
    # directories never collide, even for two commands started in the same second.
    now = datetime.now()
    os.environ["BPEXP_STAMP"] = f"{now:%Y-%m-%d}/{now:%H-%M-%S}-{secrets.token_hex(3)}"
    os.environ.pop("BPEXP_GIT_COMMIT", None)
    # MLflow's HTTP client retries 7 times with exponential back-off by default
    # (minutes); bpexp checks the server up front, so keep in-run retries short
    for key, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"),
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30"),
    ):
        os.environ.setdefault(key, value)
    tracking.git_commit()
    status = "FAILED"
    try:
        _hydra_main()
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except SystemExit as exc:
        status = "FINISHED" if exc.code in (0, None) else "FAILED"
        raise
    finally:
        tracking.close_parent(status)
