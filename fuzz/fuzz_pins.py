"""Fuzz target: pin parsing (inventories, client configs, the command line).

Invariant: ``parse_pin`` returns a Pin whose digest has its algorithm's size,
or raises PinError; a parsed pin written in every spelling that carries its
algorithm reads back as the same pin. The first byte picks the ``digest``
argument (Android's ``<pin digest=...>``), the rest is the text.

    python fuzz/fuzz_pins.py [CORPUS_DIR] [-runs=N] [-max_total_time=S]
"""

from __future__ import annotations

from _driver import fuzz, instrumented

with instrumented():
    from scanner.errors import PinError
    from scanner.model import HashAlg, PinFormat
    from scanner.pins import format_pin, parse_pin

DIGESTS = (None, "SHA-256", "SHA-1", "sha256", "SHA256", "sha-1", "MD5", "", "SHA-256 ")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    digest = DIGESTS[data[0] % len(DIGESTS)]
    text = data[1:].decode("utf-8", "replace")
    try:
        pin = parse_pin(text, digest=digest, where="fuzz")
    except PinError as exc:
        assert str(exc).startswith("fuzz: invalid pin "), exc
        return
    assert len(pin.digest) == pin.alg.digest_size
    for fmt in (PinFormat.OKHTTP, PinFormat.HPKP, PinFormat.HEX):
        assert parse_pin(format_pin(pin, fmt)) == pin, (text, fmt)
    name = "SHA-256" if pin.alg is HashAlg.SHA256 else "SHA-1"
    assert parse_pin(format_pin(pin, PinFormat.PLAIN), digest=name) == pin


def seeds() -> list[bytes]:
    b64 = "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
    texts = [
        f"sha256/{b64}",
        f'pin-sha256="{b64}"',
        b64,
        b64.rstrip("=").replace("+", "-").replace("/", "_"),
        "0b9fa5a59eed715c26c1020c711b4f6ec42d58b0015e14337a39d2c101c5efc3",
        "0b:9f:a5:a5:9e:ed:71:5c:26:c1:02:0c:71:1b:4f:6e:c4:2d:58:b0:01:5e:14:33:7a:39:d2:c1",
        "sha1/BOGUSBOGUSBOGUSBOGUSBOGUSBO=",
        "sha1/3lKvjNsfmrn+WmfDhvr2iVh/yRs=",
        "de52af8cdb1f9ab9fe5a67c386faf689587fc91b",
        "md5/AAAAAAAAAAAAAAAAAAAAAA==",
        "sha256/AAAA",
    ]
    return [bytes([n]) + text.encode() for text in texts for n in range(len(DIGESTS))]


if __name__ == "__main__":
    fuzz(test_one_input, seeds)
