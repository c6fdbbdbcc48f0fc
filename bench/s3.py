"""A local S3-compatible server for the bench: moto in server mode, in a process of its own.

The pipeline case writes its batch files there (``CONNECTOR_OUTBOX_URL=s3://...``), beside
the local-disk case of the same run: what an object-store outbox costs, uploads included.
The server's own CPU is another process's, so it is not in the case's ``cpu_s``.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class LocalS3:
    """The running server: the environment a case needs and the bucket made for the run."""

    env: dict[str, str]
    bucket: str

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_s3(start_timeout_s: float = 60) -> Iterator[LocalS3]:
    """moto's S3 on a free loopback port with one new bucket; stopped on exit."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + start_timeout_s
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        while True:
            try:
                httpx.put(f"{endpoint}/{bucket}", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the local S3 server did not start on {endpoint}") from None
                time.sleep(0.2)
        yield LocalS3(
            env={
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench-secret",
                "AWS_REGION": "us-east-1",
            },
            bucket=bucket,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
