"""``python -m scanner.cli.worker``: one worker process of ``scan --workers N``.

It reads its job on stdin and writes its results on stdout
(``scanner.workers.serve_share``); Ctrl-C is for the scan that started it,
which stops it when it must.
"""

from __future__ import annotations

import signal
import sys

from scanner.workers import serve_share

__all__ = ["main"]


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the scan that started it decides
    return serve_share(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
