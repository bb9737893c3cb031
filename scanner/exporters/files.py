"""File output that never leaves half a file, never destroys what is not a
file, and never widens permissions.

- A regular file (or a name that does not exist yet) is replaced atomically:
  a temporary file beside it, fsync, rename. A reader sees the old file or
  the new one, never half of either. The new file keeps the mode of the file
  it replaces; a new file gets 0666 less the process umask, as ``open`` would
  give it.
- A pipe (FIFO) or a character device (``/dev/stdout``, ``/dev/null``, a
  terminal) is written in place: renaming over it would replace the device
  node itself.
- Anything else (a directory, a socket, a block device) is refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from scanner.errors import ExportError

__all__ = ["write_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pieces(data: str | bytes | Iterable[str]) -> Iterator[bytes]:
    if isinstance(data, str):
        yield data.encode()
    elif isinstance(data, bytes):
        yield data
    else:
        for piece in data:
            yield piece.encode()


def write_atomic(path: str | os.PathLike[str], data: str | bytes | Iterable[str]) -> None:
    """Write `data` to `path` as described above; ExportError when it cannot be.
    `data` may come in pieces (an iterable of str, e.g. a report written entry
    by entry): they are written as they come, never joined in memory."""
    target = Path(path)
    payload = _pieces(data)
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as exc:
        raise ExportError(
            f"{target}: cannot write: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if st is not None and (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        _write_in_place(target, payload)
        return
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ExportError(f"{target}: cannot write: not a regular file, a pipe or a device")
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    except OSError as exc:
        raise ExportError(f"{target}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            for piece in payload:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ExportError(f"{target}: cannot write: {exc.strerror}") from None
    except BaseException:  # the pieces' producer failed: no temporary file left behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_in_place(target: Path, payload: Iterable[bytes]) -> None:
    try:
        # O_NONBLOCK: a FIFO nobody reads fails at once (ENXIO) instead of hanging
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ExportError(f"{target}: cannot write: {exc.strerror}") from None
    try:
        os.set_blocking(fd, True)
        for piece in payload:
            view = memoryview(piece)
            while view:
                written = os.write(fd, view)
                view = view[written:]
    except OSError as exc:
        raise ExportError(f"{target}: cannot write: {exc.strerror}") from None
    finally:
        os.close(fd)
