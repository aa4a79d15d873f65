"""The names of what a job leaves in its output directory, and of the tags and
summary metrics its MLflow run carries: defined here once, read by the job that
writes them, by :func:`bpexp.tracking.publish` and ``bpexp.sync`` that send
them, and by :mod:`bpexp.analysis` that reads them back.

A job's output directory (Hydra's ``hydra.runtime.output_dir``)::

    run.json            what publishing needs: store, run id, name, tags, params, state
    artifacts/          the files published as the run's artifacts
        config.yaml     the resolved configuration
        history.csv     every epoch's measures (``history.csv.part`` while training)
        summary.json    the summary metrics and the stop reason
        dataset.json    what the data set was (source, sizes, checksums)
        weights.npz     the trained network (MLP.save)
        loss_curve.png  the run's loss figure
        error.txt       the traceback of a run that failed
    checkpoint.npz      where a stopped run's training stood (bpexp.core.Checkpoint):
                        what ``trainer.continue_from`` goes on from; not published
"""

from __future__ import annotations

#: in a job's output directory
RUN_FILE = "run.json"
ARTIFACTS = "artifacts"
CHECKPOINT = "checkpoint.npz"
#: in ``artifacts/``
CONFIG = "config.yaml"
HISTORY = "history.csv"
SUMMARY_FILE = "summary.json"
DATASET = "dataset.json"
WEIGHTS = "weights.npz"
FIGURE = "loss_curve.png"
ERROR = "error.txt"
#: the suffix of a file still being written (renamed into place when complete)
PARTIAL = ".part"

#: in a sweep's directory: the parent run's record, for its jobs and bpexp.sync
PARENT_FILE = ".bpexp-parent.json"
#: one line appended per job that ended, for the sweep's time left
ENDED_FILE = ".bpexp-ended"

#: a history's columns after ``epoch``, in this order (a run logs those it has)
HISTORY_KEYS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "grad_norm",
    "updates",
    "samples",
    "seconds",
    "lr",
)
#: the history columns that count (as ints in a record); the others are measures
COUNTS = ("epoch", "updates", "samples")
#: the history columns sent to MLflow as metrics (``lr`` only when it changes).  Not
#: ``samples`` (``updates`` times the batch size) nor ``seconds``: each point's
#: timestamp is the run's start plus its training seconds, so MLflow's relative-time
#: axis is training time
METRIC_KEYS = tuple(k for k in HISTORY_KEYS if k not in ("samples", "seconds"))

#: the summary metrics a finished run logs (those a run has: ``epochs_to_threshold``
#: only with a threshold reached, ``final_val_*`` only with validation data)
SUMMARY = (
    "initial_loss",
    "final_loss",
    "best_loss",
    "epochs_run",
    "epochs_to_threshold",
    "converged",
    "diverged",
    "wall_seconds",
    "train_seconds",
    "final_train_accuracy",
    "final_val_loss",
    "final_val_accuracy",
)

#: tags: a run's role (``job`` or ``sweep``), why training stopped, a failure's message
ROLE = "bpexp.role"
STOP_REASON = "stop_reason"
ERROR_TAG = "error"
#: a sweep parent's tags: its directory, overrides, study and swept keys
SWEEP_DIR = "bpexp.sweep_dir"
OVERRIDES = "bpexp.overrides"
STUDY = "bpexp.study"
SWEPT = "bpexp.swept"
#: on a run published from the job's memory because its output directory could not be
#: written (a full disk): ``memory``; logged last, so it says every part reached the store
PUBLISHED_FROM = "bpexp.published"
#: the Hydra launcher that ran a job (``stacked`` runs share their group's training time)
LAUNCHER = "bpexp.launcher"
#: a job's tags the analysis reads as columns
JOB_TAGS = ("dataset", "variant", STOP_REASON, ERROR_TAG, LAUNCHER)
#: a continued run's tag naming the stopped run it went on from, and that run's
#: tag naming the run that continued it
CONTINUES = "bpexp.continues"
CONTINUED_AS = "bpexp.continued_as"
#: MLflow's own tags
PARENT_RUN_ID = "mlflow.parentRunId"
SOURCE_NAME = "mlflow.source.name"
GIT_COMMIT = "mlflow.source.git.commit"

#: params that say where or how a run was recorded, not what was trained: two runs
#: that differ only in these are the same experiment (prefixes of dotted keys)
NOT_THE_EXPERIMENT = (
    "tracking.",
    "report.",
    "trainer.progress",
    "trainer.continue_from",
    "dataset.root",
    "dataset.download",
    "dataset.timeout",
    "dataset.mirrors",
)
