"""Reading the YAML a user points the CLI at: files, directories (recursively), or `-`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

YAML_SUFFIXES = (".yaml", ".yml", ".json")


class UnreadableInput(Exception):
    """A path that does not exist, cannot be read, or is not YAML."""


@dataclass(frozen=True)
class Document:
    source: str  # the file name as given, or "-" for stdin
    index: int  # position in a multi-document stream
    body: Any

    @property
    def label(self) -> str:
        body = self.body if isinstance(self.body, dict) else {}
        name = (body.get("metadata") or {}).get("name", f"<document {self.index}>")
        return f"{body.get('kind', '<no kind>')}/{name}"


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
    if path.exists():
        return [path]
    raise UnreadableInput(f"{path}: no such file or directory")


def _parse(source: str, text: str) -> Iterator[Document]:
    try:
        bodies = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise UnreadableInput(f"{source}: not valid YAML: {exc}") from None
    for index, body in enumerate(bodies):
        if body is not None:  # `---` separators with nothing between them
            yield Document(source, index, body)


def read_documents(arguments: list[str]) -> Iterator[Document]:
    for argument in arguments:
        if argument == "-":
            yield from _parse("-", sys.stdin.read())
            continue
        for file in _files(Path(argument)):
            try:
                text = file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise UnreadableInput(f"{file}: cannot read: {exc}") from None
            yield from _parse(str(file), text)
