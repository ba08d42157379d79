"""Admin safety: the admin routes exist only with a token; a request without a bearer token gets a 401 with
``WWW-Authenticate: Bearer``, one with a wrong token a 403; the token is compared in constant time and never
appears in a log or a response, in process or from `searchrec serve` (whose 413 is checked there too)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes import admin

REPO = Path(__file__).resolve().parents[2]
TOKEN = "adm1n-t0ken-kept-out-of-logs"
STARTUP_DEADLINE_S = 600.0  # loading on a busy two-core machine; a bound, not a pause


@pytest.fixture(scope="module")
def root(shops_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("admin") / "shops"
    shutil.copytree(shops_root, copy)
    return copy


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app({"shops": root}, admin_token=TOKEN)) as test_client:
        yield test_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("token", ["", None])
def test_without_a_token_the_admin_routes_do_not_exist(
    root: Path, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    monkeypatch.setenv(admin.TOKEN_ENV, "")  # set but empty counts as unset
    app = create_app({"shops": root}, admin_token=token)
    with TestClient(app) as plain:
        response = plain.post("/admin/reload", headers=_bearer(""))
        assert response.status_code == 404
        assert (
            response.json()["detail"]
            == "no route serves POST /admin/reload; the API is described at /docs and /openapi.json"
        )
        assert not any(path.startswith("/admin") for path in plain.get("/openapi.json").json()["paths"])


def test_the_token_may_come_from_the_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(admin.TOKEN_ENV, TOKEN)
    with TestClient(create_app({"shops": root})) as from_env:
        assert from_env.post("/admin/reload", headers=_bearer(TOKEN)).status_code == 200
        assert from_env.post("/admin/reload", headers=_bearer("other")).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
)
def test_no_bearer_token_is_a_401_asking_for_one(client: TestClient, headers: dict) -> None:
    response = client.post("/admin/reload", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <token>" in response.json()["detail"]


@pytest.mark.parametrize("wrong", ["wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), f"{TOKEN} {TOKEN}"])
def test_a_wrong_token_is_a_403(client: TestClient, wrong: str) -> None:
    response = client.post("/admin/reload", headers=_bearer(wrong))
    assert response.status_code == 403
    assert (
        response.json()["detail"] == f"the bearer token is not this service's admin token ({admin.TOKEN_ENV})"
    )
    assert "www-authenticate" not in response.headers


def test_the_right_token_reloads_and_any_scheme_case_is_read(client: TestClient) -> None:
    assert client.post("/admin/reload", headers=_bearer(TOKEN)).status_code == 200
    assert client.post("/admin/reload", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    response = client.post("/admin/reload", params={"collection": "nope"}, headers=_bearer(TOKEN))
    assert response.status_code == 404 and "unknown collection 'nope'" in response.json()["detail"]


def test_the_token_is_compared_in_constant_time(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = admin.hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(admin.hmac, "compare_digest", spy)
    assert client.post("/admin/reload", headers=_bearer("w")).status_code == 403
    assert client.post("/admin/reload", headers=_bearer(TOKEN)).status_code == 200
    assert len(compared) == 2
    # digests of one length, whatever the lengths of the tokens: not even the length shows in the timing
    assert {len(given) for given, _ in compared} == {len(expected) for _, expected in compared} == {32}


def test_the_token_is_in_no_log_and_no_response(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses = [
        client.post("/admin/reload", headers=_bearer(TOKEN)),
        client.post("/admin/reload", params={"collection": "nope"}, headers=_bearer(TOKEN)),
        client.post("/admin/reload", params={"collection": ["a", "b"]}, headers=_bearer(TOKEN)),
        client.post("/admin/reload", headers=_bearer(TOKEN + "x")),
        client.post("/admin/reload", headers={"Authorization": f"Basic {TOKEN}"}),
        client.get("/readyz"),
        client.get("/metrics"),
    ]
    for response in responses:
        assert TOKEN not in response.text and TOKEN not in str(response.headers)
    assert TOKEN not in caplog.text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_keeps_the_token_out_of_its_log_and_limits_bodies(root: Path, tmp_path: Path) -> None:
    """One `searchrec serve` process with the token in its environment and a small body limit: the admin
    answers and the 413 are the same over real HTTP, and its whole log (access lines included) never
    holds the token."""
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, admin.TOKEN_ENV: TOKEN, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "api.cli", "serve", "--index", f"shops={root}", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--workers", "1", "--max-body-bytes", "2048"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        with httpx.Client(base_url=url, timeout=60) as http:
            assert http.post("/admin/reload").status_code == 401
            assert http.post("/admin/reload", headers=_bearer("nope")).status_code == 403
            assert http.post("/admin/reload", headers=_bearer(TOKEN)).status_code == 200
            big = http.post("/search", json={"query": "pizza " * 400})
            assert big.status_code == 413, big.text
            assert big.json()["detail"].startswith("the request body may be at most 2048 bytes")
            assert http.post("/search", json={"query": "pizza"}).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = log.read_text()
    assert '"POST /admin/reload HTTP/1.1" 403' in text  # the access log was written
    assert TOKEN not in text


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"not ready within {STARTUP_DEADLINE_S} s:\n{log.read_text()[-4000:]}")
