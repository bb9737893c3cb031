"""Run one command and report its CPU and peak RSS, measured from a small parent.

Why this exists: Linux keeps a process's peak RSS across exec, and a child
forked by the benchmark starts as a copy of the benchmark (whose RSS grows to
hundreds of MiB with the fleet and the reports it reads back), so ``wait4``'s
``ru_maxrss`` for a client the benchmark forks directly is at least the
benchmark's own RSS at that moment: a ``/bin/true`` forked from a 300 MiB
parent "peaks" at 310 MiB. This launcher is started with ``-I -S`` (a few MiB)
and forks the client itself, so the figure is the client's.

Usage: ``python -I -S launch.py OUT COMMAND...``; OUT receives
``utime stime maxrss_kib``, the exit code is the command's.
"""

import os
import sys


def main() -> None:
    out, command = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:  # the client: stdin, stdout, stderr, cwd and CPU affinity inherited
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _pid, status, usage = os.wait4(pid, 0)
    with open(out, "w") as handle:
        handle.write(f"{usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss}\n")
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
