"""A sandbox in its own process for the benchmark: prints its URL, serves until stdin closes."""

from __future__ import annotations

import json
import sys

from connector.sandbox.testing import running_sandbox


def main() -> None:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    with running_sandbox(**options) as sandbox:
        print(sandbox.url, flush=True)
        sys.stdin.read()  # the parent closes stdin to stop us


if __name__ == "__main__":
    main()
