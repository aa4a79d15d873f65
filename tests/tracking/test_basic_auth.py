"""``http://user:password@host`` tracking URIs: the credentials go out as HTTP basic auth.

The servers here are real HTTP servers on 127.0.0.1 that refuse any request without the
right ``Authorization`` header (401), as a server behind an authenticating proxy does.
"""

from __future__ import annotations

import base64
import http.server
import urllib.error
import urllib.request

import pytest

from bpexp.tracking.store import TrackingError, check_store
from tests.conftest import LocalHTTPServer
from tests.helpers import Server, bpexp, runs

USER, PASSWORD = "ada", "p@ss:w/rd"  # characters a URI must percent-encode
IN_URI = "ada:p%40ss%3Aw%2Frd"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class AuthServer(LocalHTTPServer):
    """A threaded HTTP server that answers only requests carrying ``USER:PASSWORD``.

    With ``upstream`` it forwards them there (an authenticating proxy); without, it
    answers ``GET <prefix>/health`` with 200 as an MLflow server does.  ``seen`` holds
    (method, path, Authorization header) of every request.
    """

    def __init__(self, upstream: str | None = None, prefix: str = ""):
        self.seen: list[tuple[str, str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_one(self):
                auth = self.headers.get("Authorization")
                outer.seen.append((self.command, self.path, auth))
                if auth != basic(USER, PASSWORD):
                    return self.reply(401, b"", {"WWW-Authenticate": 'Basic realm="mlflow"'})
                if upstream is None:
                    ok = self.command == "GET" and self.path == f"{prefix}/health"
                    return self.reply(200 if ok else 404, b"OK" if ok else b"", {})
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = urllib.request.Request(
                    upstream + self.path, data=body, method=self.command
                )
                for key in ("Content-Type", "Accept"):
                    if self.headers.get(key):
                        request.add_header(key, self.headers[key])
                try:
                    with urllib.request.urlopen(request, timeout=60) as r:
                        status, data, kind = r.status, r.read(), r.headers.get("Content-Type")
                except urllib.error.HTTPError as exc:
                    status, data, kind = exc.code, exc.read(), exc.headers.get("Content-Type")
                return self.reply(status, data, {"Content-Type": kind} if kind else {})

            def reply(self, status: int, data: bytes, headers: dict[str, str]):
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.mark.parametrize("prefix", ["", "/mlflow"])
def test_the_health_check_sends_the_uris_credentials_as_basic_auth(prefix):
    with AuthServer(prefix=prefix) as server:
        check_store(f"http://{IN_URI}@{server.host}{prefix}")
    # one request, to the health path alone (no credentials in it), with them decoded
    assert server.seen == [("GET", f"{prefix}/health", basic(USER, PASSWORD))]


@pytest.mark.parametrize(
    "userinfo, sent",
    [("ada:wrong@", basic(USER, "wrong")), ("", None)],
    ids=["wrong-password", "no-credentials"],
)
def test_a_refused_health_check_is_one_line_without_the_password(userinfo, sent):
    with AuthServer() as server:
        uri = f"http://{userinfo}{server.host}"
        with pytest.raises(TrackingError) as info:
            check_store(uri)
    message = str(info.value)
    assert f"tracking server http://{userinfo.replace('wrong', '***')}{server.host}" in message
    assert "(HTTP 401)" in message and "wrong" not in message and "\n" not in message
    assert server.seen == [("GET", "/health", sent)]


@pytest.mark.slow
def test_a_run_tracks_through_a_server_that_requires_basic_auth(tmp_path):
    """The whole run, health check and MLflow client alike, through an authenticating proxy
    in front of a real ``python -m bpexp.server``."""
    upstream = Server(f"sqlite:///{tmp_path}/server.db", tmp_path)
    try:
        with AuthServer(upstream=upstream.url) as proxy:
            work = tmp_path / "work"
            work.mkdir()
            result = bpexp(
                "trainer.epochs=20", f"tracking.uri=http://{IN_URI}@{proxy.host}", cwd=work
            )
        found = runs(upstream.url)
    finally:
        upstream.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout + result.stderr
    assert PASSWORD not in printed and IN_URI not in printed
    (run,) = found
    assert run.info.status == "FINISHED" and "train_loss" in run.data.metrics
    # every request carried the credentials, and the run's files went through too
    assert proxy.seen and {auth for _, _, auth in proxy.seen} == {basic(USER, PASSWORD)}
    assert any("artifacts" in path for _, path, _ in proxy.seen), proxy.seen
