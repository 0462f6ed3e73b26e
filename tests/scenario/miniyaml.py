"""Just enough YAML to read the examples, so the tests need no YAML library.

Handles what Kubernetes and Compose files use: block mappings and sequences
(``- key: value`` items included), ``---`` documents, comments, flow
sequences of scalars (``["a", "b"]``), single- and double-quoted strings,
and the scalars null, booleans (true/false), integers and floats. Anything
else (block scalars ``|``/``>``, anchors, flow mappings with content, tags)
raises ``ValueError`` so an example cannot silently mean something else.
When PyYAML is installed, the tests check both parsers agree.
"""

from __future__ import annotations

import json
import re
from typing import Any

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def load_all(text: str) -> list[Any]:
    """The documents of *text*, as Python values."""
    docs: list[list[tuple[int, str]]] = [[]]
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        if line == "---":
            docs.append([])
            continue
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise ValueError(f"line {number}: tab in indentation")
        docs[-1].append((len(line) - len(line.lstrip(" ")), line.strip()))
    return [_Parser(lines).document() for lines in docs if lines]


def load(text: str) -> Any:
    docs = load_all(text)
    if len(docs) != 1:
        raise ValueError(f"expected one document, found {len(docs)}")
    return docs[0]


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " [,{:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _split_key(text: str) -> tuple[str, str] | None:
    """``key: rest`` -> (key, rest); None if *text* is not a mapping entry."""
    if text[:1] in "\"'":
        end = _quoted_end(text)
        if text[end : end + 1] == ":" and (len(text) == end + 1 or text[end + 1] == " "):
            return str(_scalar(text[:end])), text[end + 1 :].strip()
        return None
    if text[:1] in "[{":
        return None
    m = re.search(r":(\s|$)", text)
    if not m:
        return None
    return text[: m.start()].strip(), text[m.end() :].strip()


def _quoted_end(text: str) -> int:
    """Index just past the quoted string that starts *text*."""
    q, i = text[0], 1
    while i < len(text):
        if q == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == q:
            if q == "'" and text[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    raise ValueError(f"unterminated string: {text}")


def _scalar(text: str) -> Any:
    if text.startswith('"'):
        if _quoted_end(text) != len(text):
            raise ValueError(f"text after a quoted string: {text}")
        return json.loads(text)
    if text.startswith("'"):
        if _quoted_end(text) != len(text):
            raise ValueError(f"text after a quoted string: {text}")
        return text[1:-1].replace("''", "'")
    if text.startswith("["):
        return _flow_sequence(text)
    if text == "{}":
        return {}
    if text[:1] in "{&*!|>%@`":
        raise ValueError(f"unsupported YAML: {text}")
    if text in ("null", "Null", "NULL", "~"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _flow_sequence(text: str) -> list[Any]:
    if not text.endswith("]"):
        raise ValueError(f"unsupported flow sequence: {text}")
    body, items, i = text[1:-1].strip(), [], 0
    while i < len(body):
        if body[i] in "\"'":
            end = _quoted_end(body[i:]) + i
        else:
            end = body.find(",", i)
            end = len(body) if end < 0 else end
        items.append(_scalar(body[i:end].strip()))
        rest = body[end:].lstrip()
        if rest and not rest.startswith(","):
            raise ValueError(f"unsupported flow sequence: {text}")
        i = len(body) - len(rest[1:].lstrip()) if rest else len(body)
    return items


class _Parser:
    def __init__(self, lines: list[tuple[int, str]]) -> None:
        self.lines = lines
        self.i = 0

    def document(self) -> Any:
        value = self.block(self.lines[0][0])
        if self.i != len(self.lines):
            raise ValueError(f"unexpected indentation at {self.lines[self.i][1]!r}")
        return value

    def block(self, indent: int) -> Any:
        text = self.lines[self.i][1]
        if text == "-" or text.startswith("- "):
            return self.sequence(indent)
        if _split_key(text) is None:
            self.i += 1
            return _scalar(text)
        return self.mapping(indent)

    def _nested(self, indent: int, *, allow_sequence_at_same: bool) -> Any:
        if self.i < len(self.lines):
            nxt_indent, nxt = self.lines[self.i]
            if nxt_indent > indent:
                return self.block(nxt_indent)
            if allow_sequence_at_same and nxt_indent == indent and nxt.startswith("- "):
                return self.sequence(indent)
        return None

    def sequence(self, indent: int) -> list[Any]:
        items = []
        while self.i < len(self.lines):
            ind, text = self.lines[self.i]
            if ind != indent or not (text == "-" or text.startswith("- ")):
                break
            self.i += 1
            rest = text[1:].lstrip()
            if not rest:
                items.append(self._nested(indent, allow_sequence_at_same=False))
            elif _split_key(rest) is not None or rest.startswith("- "):
                # "- key: v" opens a mapping whose keys sit at the column of "key".
                col = indent + len(text) - len(rest)
                self.lines.insert(self.i, (col, rest))
                items.append(self.block(col))
            else:
                items.append(_scalar(rest))
        return items

    def mapping(self, indent: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self.i < len(self.lines):
            ind, text = self.lines[self.i]
            if ind != indent or text.startswith("- "):
                break
            entry = _split_key(text)
            if entry is None:
                raise ValueError(f"expected 'key: value', got {text!r}")
            key, rest = entry
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            self.i += 1
            out[key] = _scalar(rest) if rest else self._nested(indent, allow_sequence_at_same=True)
        return out
