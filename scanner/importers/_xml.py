"""A small element tree with positions, built by the stdlib's expat behind defusedxml.

Client configurations are files from apps, so they are read defensively:
entity declarations (the "billion laughs"), external entities and, unless
asked otherwise, any DTD are refused before they are expanded
(``defusedxml``). Every element keeps its 1-based line and column, so that
every problem can say where it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from scanner.errors import ClientConfigError
from scanner.model import ConfigProblem, Location

__all__ = ["MAX_BYTES", "Element", "parse_xml"]

MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 256  # elements nested deeper are refused (no client file needs more than ten)


@dataclass
class Element:
    """One XML element: tag, attributes, direct text and children, with its position."""

    tag: str
    attrib: dict[str, str]
    location: Location
    children: list[Element] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The element's own text (not its children's), as written."""
        return "".join(self.parts)


class _Builder:
    """The parser's target: builds Elements and records where each starts."""

    def __init__(self, name: str, offset: tuple[int, int] = (0, 0)) -> None:
        self.name = name
        self.offset = offset  # lines before the document, columns before it on its first line
        self.parser: DefusedXMLParser | None = None
        self.stack: list[Element] = []
        self.root: Element | None = None

    def here(self) -> Location:
        assert self.parser is not None
        expat = self.parser.parser
        return self.shift(expat.CurrentLineNumber, expat.CurrentColumnNumber + 1)

    def shift(self, line: int, column: int) -> Location:
        lines, columns = self.offset
        return Location(self.name, line + lines, column + (columns if line == 1 else 0))

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise ClientConfigError(
                self.here(), f"refused: elements nested more than {MAX_DEPTH} deep"
            )
        element = Element(tag, dict(attrib), self.here())
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def end(self, tag: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].parts.append(text)

    def close(self) -> Element | None:
        return self.root


def parse_xml(
    data: bytes, name: str, *, allow_doctype: bool = False, offset: tuple[int, int] = (0, 0)
) -> Element | ConfigProblem:
    """The root element, or the problem that makes the document not well-formed.
    `offset`: (lines, columns) of the file that come before `data`.

    Raises ClientConfigError for a document refused for safety (entities,
    external references, a DTD when not allowed) or too large."""
    if len(data) > MAX_BYTES:
        raise ClientConfigError(
            Location(name, 1, 1), f"file too large: more than {MAX_BYTES} bytes"
        )
    builder = _Builder(name, offset)
    parser = DefusedXMLParser(target=builder, forbid_dtd=not allow_doctype)
    builder.parser = parser
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException as exc:
        raise ClientConfigError(builder.here(), f"refused: {_defused_message(exc)}") from None
    except ParseError as exc:
        line, column = exc.position
        message = str(exc).split(":", 1)[0]
        return ConfigProblem(builder.shift(line, column + 1), f"not well-formed XML: {message}")
    except (LookupError, ValueError) as exc:  # an encoding expat does not know, for one
        return ConfigProblem(builder.shift(1, 1), f"not well-formed XML: {exc}")
    if not isinstance(root, Element):  # pragma: no cover - expat reports "no element found"
        return ConfigProblem(Location(name, 1, 1), "not well-formed XML: no element found")
    return root


def _defused_message(exc: DefusedXmlException) -> str:
    kind = type(exc).__name__
    if kind == "DTDForbidden":
        return "a DTD (<!DOCTYPE ...>) is not allowed here"
    if kind == "EntitiesForbidden":
        return "XML entity declarations are not allowed (entity expansion attack)"
    return "external XML references are not allowed"
