"""The digest of a model artifact (a directory of files), as `spec.bundle.artifact.digest`.

Canonical order: every regular file below the directory, by its path relative to the directory
in POSIX form, sorted by the UTF-8 bytes of that path. For each file in that order the digest
takes `<relative path>\\0<sha256 hex of the file's bytes>\\n`. The result is `sha256:<hex>` of that
stream. Renaming, adding, removing or changing any file changes it; the directory's own location,
timestamps and permissions do not."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from pathlib import Path

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_digest(directory: str | Path) -> str:
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file()),
        key=lambda p: p.relative_to(root).as_posix().encode("utf-8"),
    )
    digest = hashlib.sha256()
    for path in files:
        relative = path.relative_to(root).as_posix()
        digest.update(f"{relative}\0{file_sha256(path)}\n".encode())
    return f"sha256:{digest.hexdigest()}"


class DigestMismatch(Exception):
    def __init__(self, what: str, directory: str | Path, expected: str, actual: str) -> None:
        super().__init__(f"{what} at {directory} has digest {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


def verify(what: str, directory: str | Path, expected: str | None) -> str:
    """The directory's digest; raises DigestMismatch when an expected digest is given and differs."""
    actual = artifact_digest(directory)
    if expected and actual != expected:
        raise DigestMismatch(what, directory, expected, actual)
    return actual


def main(argv: list[str] | None = None) -> int:
    """`python -m ftrelease.checks.digest DIR EXPECTED`: a runtime's init step. Exit 1 with the
    reason (also the container's termination message) when the artifact is not the one named."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ftrelease.checks.digest")
    parser.add_argument("directory")
    parser.add_argument("expected", help="sha256:<64 hex>, as spec.bundle.artifact.digest")
    args = parser.parse_args(argv)
    try:
        verify("artifact", args.directory, args.expected)
    except (DigestMismatch, FileNotFoundError) as exc:
        message = f"digest check failed: {exc}"
        print(message, file=sys.stderr)
        with contextlib.suppress(OSError):
            Path(TERMINATION_LOG).write_text(message)
        return 1
    print(f"artifact at {args.directory} is {args.expected}")
    return 0


TERMINATION_LOG = "/dev/termination-log"

if __name__ == "__main__":
    sys.exit(main())
