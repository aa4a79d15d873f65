"""Tracking: a job's files, their publication to MLflow, sweeps' parent runs,
``bpexp.sync`` and the team server.  The only package of bpexp that imports MLflow.

- :mod:`~bpexp.tracking.names`: the output directory's files, summary keys and tags;
- :mod:`~bpexp.tracking.store`: the store's URI, its check, passwords masked;
- :mod:`~bpexp.tracking.files`: the job's files, written whole, no MLflow;
- :mod:`~bpexp.tracking.publisher`: a run created at a job's start, published at its end;
- :mod:`~bpexp.tracking.run`: :class:`RunTracker`, a job's run from start to end;
- :mod:`~bpexp.tracking.sweep`: a sweep's parent run;
- :mod:`~bpexp.tracking.sync`, :mod:`~bpexp.tracking.server`: the two commands.
"""

from bpexp.tracking.publisher import NothingToPublish, publish
from bpexp.tracking.run import RunTracker
from bpexp.tracking.store import TrackingError, masked, resolve_tracking_uri

__all__ = [
    "NothingToPublish",
    "RunTracker",
    "TrackingError",
    "masked",
    "publish",
    "resolve_tracking_uri",
]
