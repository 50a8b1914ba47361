"""A strict, small XML reader for STS answers: no DTDs, no entities, bounded size and depth.

expat directly, with every construct that XML attacks need turned into an error: a DOCTYPE
(and so any entity declaration, internal or external: billion laughs, XXE), processing
instructions and external entity references. What is left is elements and text, returned
as a tiny immutable tree with namespace-qualified names (``"{ns}Local"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat

MAX_DEPTH = 8
MAX_ELEMENTS = 256


class XmlRefused(ValueError):
    """The document is not well-formed or uses a construct we do not read."""


@dataclass(slots=True)
class Element:
    """One element: qualified tag, direct text (stripped) and child elements."""

    tag: str
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def local(self) -> str:
        """The tag without its namespace."""
        return self.tag.rpartition("}")[2]

    def named(self, local: str) -> list[Element]:
        """Children with this local name."""
        return [child for child in self.children if child.local == local]


class _Builder:
    def __init__(self) -> None:
        self.stack: list[Element] = []
        self.root: Element | None = None
        self.count = 0
        self.text: list[list[str]] = []

    def start(self, name: str, _attributes: dict[str, str]) -> None:
        self.count += 1
        if self.count > MAX_ELEMENTS or len(self.stack) >= MAX_DEPTH:
            raise XmlRefused("document too large or too deep")
        tag = "{" + name.replace(" ", "}", 1) if " " in name else name
        element = Element(tag)
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)
        self.text.append([])

    def end(self, _name: str) -> None:
        element = self.stack.pop()
        element.text = "".join(self.text.pop()).strip()

    def data(self, text: str) -> None:
        if self.text:
            self.text[-1].append(text)


def _refuse(*_args: object) -> None:
    raise XmlRefused("DTDs, entities and processing instructions are not accepted")


def _refuse_external(*_args: object) -> int:
    raise XmlRefused("external entities are not accepted")


def parse(document: bytes) -> Element:
    """The root element of ``document``; raises XmlRefused."""
    builder = _Builder()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_external
    parser.ProcessingInstructionHandler = _refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(document, True)
    except expat.ExpatError as exc:
        raise XmlRefused(f"not well-formed XML: {expat.errors.messages.get(exc.code, exc.code)}"
                         ) from None
    if builder.root is None:
        raise XmlRefused("no root element")
    return builder.root
