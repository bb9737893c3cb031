"""Run one fuzz target: coverage-guided with atheris (libFuzzer) when it is
installed, else a seeded random mutator over the same seeds (no coverage
feedback, same invariants), so the targets run everywhere.

Every target script calls `fuzz(test_one_input, seeds)` under ``__main__`` and
imports the code under test inside `instrumented()`, so that atheris can
measure coverage of it. Arguments are libFuzzer's::

    python fuzz/fuzz_inventory.py [CORPUS_DIR ...] [-runs=N] [-max_total_time=S] [-seed=N]

When no corpus directory is given, the seeds go to a temporary one; when the
first one given is empty, the seeds are written into it first. A crash (an
exception other than the ones the target allows) is written to
``crash-<sha1>`` (libFuzzer: ``-artifact_prefix``) and the exit status is
non-zero; replay one with ``python fuzz/fuzz_x.py crash-<sha1>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

try:
    import atheris
except ImportError:  # pragma: no cover - atheris has wheels for Linux x86_64 only
    atheris = None

Target = Callable[[bytes], None]


def _engine() -> str:
    return "random" if atheris is None else os.environ.get("PINAUDIT_FUZZ_ENGINE", "atheris")


def _replaying(argv: Sequence[str]) -> bool:
    return any(not a.startswith("-") and Path(a).is_file() for a in argv[1:])


def instrumented() -> contextlib.AbstractContextManager[Any]:
    """Imports inside this block are instrumented for coverage (with atheris):
    our code and the YAML parser; not the libraries, whose heavy lifting is
    native code anyway (and instrumenting them costs seconds per start)."""
    if _engine() != "atheris" or _replaying(sys.argv):
        return contextlib.nullcontext()
    return atheris.instrument_imports(include=["scanner", "yaml"])  # type: ignore[no-any-return]


def fuzz(
    target: Target, seeds: Callable[[], Sequence[bytes]], argv: list[str] | None = None
) -> None:
    args = list(sys.argv if argv is None else argv)
    corpora = [a for a in args[1:] if not a.startswith("-")]
    if corpora and Path(corpora[0]).is_file():  # replay crash files
        for path in corpora:
            target(Path(path).read_bytes())
        print(f"replayed {len(corpora)} input(s): no crash")
        return
    with _corpus(corpora, seeds) as corpus:
        if corpus is not None:
            args.append(corpus)
        if _engine() == "atheris":
            atheris.Setup(args, target)
            atheris.Fuzz()
        else:
            _random_fuzz(target, seeds(), args)


@contextlib.contextmanager
def _corpus(corpora: list[str], seeds: Callable[[], Sequence[bytes]]) -> Iterator[str | None]:
    if corpora:
        first = Path(corpora[0])
        first.mkdir(parents=True, exist_ok=True)
        if not any(first.iterdir()):
            _write_seeds(first, seeds())
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="pinaudit-fuzz-") as tmp:
        _write_seeds(Path(tmp), seeds())
        yield tmp


def _write_seeds(directory: Path, seeds: Sequence[bytes]) -> None:
    for seed in seeds:
        (directory / f"seed-{hashlib.sha1(seed).hexdigest()}").write_bytes(seed)


# --------------------------------------------------------------------------- fallback


def _flag(args: list[str], name: str, default: int) -> int:
    for arg in args:
        if arg.startswith(f"-{name}="):
            return int(arg.split("=", 1)[1])
    return default


def _random_fuzz(target: Target, seeds: Sequence[bytes], args: list[str]) -> None:
    runs = _flag(args, "runs", -1)
    seconds = _flag(args, "max_total_time", 0)
    rng = random.Random(_flag(args, "seed", 0))
    prefix = next((a.split("=", 1)[1] for a in args if a.startswith("-artifact_prefix=")), "")
    pool = [bytes(s) for s in seeds] or [b""]
    start = time.monotonic()
    done = 0
    while runs < 0 or done < runs:
        if seconds and time.monotonic() - start >= seconds:
            break
        data = _mutate(rng, rng.choice(pool), pool)
        try:
            target(data)
        except Exception:
            path = f"{prefix}crash-{hashlib.sha1(data).hexdigest()}"
            Path(path).write_bytes(data)
            traceback.print_exc()
            print(f"==CRASH== after {done} runs; input written to {path}", file=sys.stderr)
            raise SystemExit(1) from None
        done += 1
    elapsed = time.monotonic() - start
    print(f"Done {done} runs in {elapsed:.0f} second(s) (random mutation, no atheris)")


_INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x81\x00", b"\x82\xff\xff", b"\n", b"-")


def _mutate(rng: random.Random, data: bytes, pool: Sequence[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.randrange(7)
        at = rng.randrange(len(out) + 1)
        if choice == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif choice == 2:
            out[at:at] = rng.choice(_INTERESTING)
        elif choice == 3 and out:
            del out[at : at + rng.randint(1, 16)]
        elif choice == 4 and out:
            piece = out[at : at + rng.randint(1, 64)]
            where = rng.randrange(len(out) + 1)
            out[where:where] = piece
        elif choice == 5:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            out[at:] = other[cut:]
        else:
            out = out[:at]
    return bytes(out)
