"""Client pin configurations → ClientPolicy (pinning-semantics §1 to §6).

Each parser is pure (bytes in, a policy out, every problem with file, line
and column); :func:`read_policy` is the one place that reads the files.

| kind | file |
| --- | --- |
| ``android`` | network-security-config XML (the platform's rules) |
| ``okhttp`` | Kotlin/Java source with ``CertificatePinner`` calls, or a ``pattern: pins`` list |
| ``trustkit`` | Info.plist with ``TSKConfiguration`` (iOS), Swift/Objective-C source with the
  configuration dictionary, or TrustKit-Android XML (told apart by content and suffix) |
| ``trustkit-android`` | the network-security-config XML as TrustKit-Android reads it |
| ``ios`` | Info.plist with ``NSAppTransportSecurity/NSPinnedDomains`` |
| ``hpkp`` | response headers (``Public-Key-Pins``, ``-Report-Only``) after their URL |
| ``chromium`` | static pins JSON, with the ``.pins`` file beside it |
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import replace

from scanner.errors import ClientConfigError
from scanner.importers._code import JAVA, KOTLIN, language_of
from scanner.importers._common import MAX_BYTES, not_the_kind
from scanner.importers.android import parse_network_security_config, parse_trustkit_android
from scanner.importers.apple import parse_ats_plist, parse_trustkit_plist
from scanner.importers.chromium import parse_chromium
from scanner.importers.hpkp import parse_hpkp_headers
from scanner.importers.okhttp import parse_okhttp
from scanner.importers.trustkit_code import CODE_SUFFIXES, looks_like_code, parse_trustkit_code
from scanner.model import CONFIG_KINDS, ClientPolicy, ConfigProblem, Location

KINDS = CONFIG_KINDS

__all__ = ["KINDS", "parse_policy", "pins_file_for", "read_file", "read_policy"]


def parse_policy(
    kind: str,
    data: bytes,
    source: str,
    *,
    name: str | None = None,
    pins_data: bytes | None = None,
    pins_source: str | None = None,
    okhttp_version: int | None = None,
) -> ClientPolicy:
    """Parse one configuration of `kind` (`okhttp_version`: the OkHttp major
    version whose rules read an ``okhttp`` file). Raises ClientConfigError for
    an unknown kind, a file that is not of that kind, or one refused for safety.

    Warnings a library raises while reading (a deprecation, a certificate
    it will refuse one day) never reach stderr: each becomes a note."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            policy = _parse(
                kind,
                data,
                source,
                name=name,
                pins=(pins_data, pins_source),
                okhttp_version=okhttp_version,
            )
        except RecursionError:  # a last resort: every reader bounds its own nesting
            raise ClientConfigError(
                Location(source, 1, 1), "refused: nested too deeply to read"
            ) from None
    if not caught:
        return policy
    notes = [
        ConfigProblem(
            Location(source, 1, 1),
            f"while reading: {w.category.__name__}: {' '.join(str(w.message).split())}",
        )
        for w in caught
    ]
    return replace(policy, notes=tuple(dict.fromkeys((*policy.notes, *notes))))


def _parse(
    kind: str,
    data: bytes,
    source: str,
    *,
    name: str | None,
    pins: tuple[bytes | None, str | None],
    okhttp_version: int | None = None,
) -> ClientPolicy:
    if kind == "android":
        return parse_network_security_config(data, source, name=name)
    if kind == "okhttp":
        return parse_okhttp(data, source, name=name, version=okhttp_version)
    if kind == "trustkit":
        if _is_android_xml(data):
            return parse_trustkit_android(data, source, name=name)
        lang = language_of(source)
        if source.lower().endswith(CODE_SUFFIXES) or (lang is None and looks_like_code(data)):
            return parse_trustkit_code(data, source, name=name)
        if lang in (KOTLIN, JAVA):
            raise not_the_kind(
                Location(source, 1, 1),
                "not a TrustKit configuration: TrustKit reads an Info.plist or a Swift/"
                "Objective-C dictionary on iOS, and the network-security-config XML on Android",
            )
        return parse_trustkit_plist(data, source, name=name)
    if kind == "trustkit-android":
        return parse_trustkit_android(data, source, name=name)
    if kind == "ios":
        return parse_ats_plist(data, source, name=name)
    if kind == "hpkp":
        return parse_hpkp_headers(data, source, name=name)
    if kind == "chromium":
        return parse_chromium(data, source, pins_data=pins[0], pins_source=pins[1], name=name)
    raise ClientConfigError(
        Location(source, 1, 1), f"unknown kind {kind!r} (one of: {', '.join(KINDS)})"
    )


def _is_android_xml(data: bytes) -> bool:
    head = data[:4096]
    return b"<network-security-config" in head and b"<plist" not in head


def read_file(path: str, display: str) -> bytes:
    """A regular file's bytes (at most the size limit). Raises ClientConfigError."""
    where = Location(display, 1, 1)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ClientConfigError(where, "not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ClientConfigError(where, f"cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ClientConfigError(where, f"cannot read: {exc}") from None
    if len(data) > MAX_BYTES:
        raise ClientConfigError(where, f"file too large: more than {MAX_BYTES} bytes")
    return data


def pins_file_for(path: str) -> str:
    """The ``.pins`` file beside a Chromium JSON file: same stem, ``.pins``."""
    return os.path.splitext(path)[0] + ".pins"


def read_policy(
    kind: str,
    path: str,
    *,
    display: str | None = None,
    name: str | None = None,
    pins_path: str | None = None,
    pins_display: str | None = None,
    okhttp_version: int | None = None,
) -> ClientPolicy:
    """Read and parse one configuration file. `display` names it in problems
    (as the user wrote it); `path` is where it is."""
    shown = display or path
    data = read_file(path, shown)
    pins_data = None
    if kind == "chromium":
        explicit = pins_path is not None
        pins_path = pins_path or pins_file_for(path)
        pins_display = pins_display or (pins_file_for(shown) if not explicit else pins_path)
        if explicit or os.path.isfile(pins_path):
            pins_data = read_file(pins_path, pins_display)
    return parse_policy(
        kind,
        data,
        shown,
        name=name,
        pins_data=pins_data,
        pins_source=pins_display,
        okhttp_version=okhttp_version,
    )
