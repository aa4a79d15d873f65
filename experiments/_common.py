"""What every study script shares: options, the report, the message when no runs exist."""

from __future__ import annotations

import argparse
import sys

from bpexp.analysis import NoRunsError
from bpexp.report import build_report


def study(config: str, experiment: str, description: str, **report) -> None:
    """Write the report of the study ``conf/experiment/<config>.yaml`` (MLflow
    experiment ``experiment``); ``report`` holds its grouping and threshold."""
    ap = argparse.ArgumentParser(description=description.splitlines()[0])
    ap.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else ./mlflow.db")
    ap.add_argument("--out", default=f"reports/{experiment}", help=f"default: reports/{experiment}")
    ap.add_argument("--log-to-parent", action="store_true", help="attach the report to the sweep")
    args = ap.parse_args()
    try:
        index = build_report(
            experiment=experiment,
            tracking_uri=args.tracking_uri,
            out=args.out,
            log_to_parent=args.log_to_parent,
            **report,
        )
    except NoRunsError as exc:
        sys.exit(f"{exc}: run the sweep first (python -m bpexp -m +experiment={config})")
    print(f"report written: {index}")
