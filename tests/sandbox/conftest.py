"""Helpers for the sandbox tests: a live server per test module or test, XML reading, curl."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree

from connector.sandbox.testing import SandboxHandle, running_sandbox

CURL = "/usr/bin/curl"


@pytest.fixture(scope="module")
def shared() -> Iterator[SandboxHandle]:
    """One sandbox for a whole module; tests keep apart by using their own client code."""
    with running_sandbox(processing_delay_s=0.0) as handle:
        yield handle


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def xml(text: str) -> dict[str, Any]:
    """A Target XML response as a dict of its child elements (``profile`` ones as a list)."""
    root = ElementTree.fromstring(text)
    assert root.tag == "response"
    out: dict[str, Any] = {"profiles": []}
    for child in root:
        if child.tag == "profile":
            out["profiles"].append({c.tag: c.text for c in child})
        else:
            out[child.tag] = child.text or ""
    return out


def post_batch(
    http: httpx.Client, sb: SandboxHandle, body: bytes | str, client: str, version: str = "v2"
) -> dict[str, Any]:
    if isinstance(body, str):
        body = body.encode()
    response = http.post(sb.target_url(client, version), content=body)
    assert response.status_code == 200, response.text
    return xml(response.text)


def status(http: httpx.Client, url: str, details: bool = True) -> dict[str, Any]:
    response = http.get(url + ("&showDetails=true" if details else ""))
    assert response.status_code == 200, response.text
    return xml(response.text)


def submit_and_wait(
    http: httpx.Client, sb: SandboxHandle, body: bytes | str, client: str, version: str = "v2"
) -> dict[str, Any]:
    """Post a batch that must be accepted; wait until applied; return its detailed status."""
    result = post_batch(http, sb, body, client, version)
    assert result["success"] == "true", result
    sb.wait_idle()
    return status(http, result["batchStatus"])


def profile(http: httpx.Client, sb: SandboxHandle, client: str, pid: str, third: bool = False):
    path = f"thirdPartyId/{pid}" if third else pid
    return http.get(f"{sb.url}/rest/v1/profiles/{path}", params={"client": client})


def values(http: httpx.Client, sb: SandboxHandle, client: str, pid: str, third: bool = False):
    response = profile(http, sb, client, pid, third)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return {k: v["value"] for k, v in response.json()["profileAttributes"].items()}


def mbox(
    http: httpx.Client,
    sb: SandboxHandle,
    client: str,
    third: str | None = None,
    pc: str | None = None,
    **profile_params: str,
) -> httpx.Response:
    """An mbox call for a visitor (commits its pending v2 attributes); ``profile.*`` params."""
    params = {"mbox": "home"}
    if third is not None:
        params["mbox3rdPartyId"] = third
    if pc is not None:
        params["mboxPC"] = pc
    params.update({f"profile.{name}": value for name, value in profile_params.items()})
    return http.get(sb.mbox_url(client), params=params)


def client_state(http: httpx.Client, sb: SandboxHandle, client: str) -> dict[str, Any]:
    """One Target client's part of ``GET /_sandbox/state``."""
    return http.get(f"{sb.url}/_sandbox/state").json()["target"]["clients"][client]


def curl_post_file(path: Path, url: str) -> str:
    """The seeds' command, as written: ``curl -X POST --data-binary @file URL``."""
    done = subprocess.run(
        [CURL, "-X", "POST", "--data-binary", f"@{path}", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout
