"""Running the sandbox under uvicorn: in the foreground (CLI) or in a background thread (tests)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from connector.sandbox.app import create_app
from connector.sandbox.state import Sandbox


class _Server(uvicorn.Server):
    """Stops on SIGINT/SIGTERM and exits normally (uvicorn would re-raise the signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class SandboxServer:
    """A uvicorn server for one ``Sandbox`` on an already bound socket (port 0 = any free port)."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.sandbox = sandbox
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host = host
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(sandbox),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
        )
        self.server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM (uvicorn installs the handlers)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sandbox.close()

    def start(self, timeout: float = 10.0) -> None:
        """Serve from a daemon thread; return once the server accepts connections."""
        self._thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.sock]},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.sock.close()
        self.sandbox.close()
