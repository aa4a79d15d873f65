"""``python -m bpexp.server``: a team MLflow tracking server (PostgreSQL backend).

    python -m bpexp.server --backend-store-uri postgresql://USER:PASSWORD@HOST:5432/DB \\
        --artifacts-destination /srv/bpexp/artifacts --host 0.0.0.0 --port 5000

Checks, in one line each, what would otherwise fail deep inside MLflow (the
database driver, the database itself), then becomes ``mlflow server`` (same
process id) with artifacts proxied by the server: jobs upload and read
artifacts through it and need no shared disk.  Runs then use
``tracking.uri=http://HOST:5000``.  The PostgreSQL driver comes with the
``server`` extra: ``pip install -e ".[server]"``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bpexp.tracking.store import TrackingError, check_database


def check_backend(uri: str, timeout: float = 5.0) -> None:
    """Fail with one line if the backend store's driver or database is not there."""
    if uri.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401  (SQLAlchemy 2.1's default PostgreSQL driver)
        except ImportError:
            raise SystemExit(
                "bpexp.server: error: the PostgreSQL driver is missing: "
                'pip install -e ".[server]" (psycopg)'
            ) from None
    if uri.startswith(("postgresql", "mysql")):
        try:
            check_database(uri, timeout)
        except TrackingError as exc:
            raise SystemExit(f"bpexp.server: error: backend store: {exc}") from None


def command(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", args.backend_store_uri,
        "--artifacts-destination", str(Path(args.artifacts_destination).resolve()),
        "--host", args.host,
        "--port", str(args.port),
        "--workers", str(args.workers),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bpexp.server", description=__doc__.splitlines()[0])
    ap.add_argument("--backend-store-uri", required=True, help="e.g. postgresql://user:pw@host/db")
    ap.add_argument("--artifacts-destination", default="mlartifacts", help="local artifact root")
    ap.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve a team")
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    check_backend(args.backend_store_uri)
    Path(args.artifacts_destination).mkdir(parents=True, exist_ok=True)
    # the server's background job runner is not needed here: it would start more processes
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = command(args)
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
