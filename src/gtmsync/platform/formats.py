"""Streaming readers for the files `gtmsync data load` accepts: CSV and JSON Lines, optionally
gzip-compressed.

Both yield one record at a time from an open byte stream, so memory stays flat however large
the file, and both report how many bytes of the file they have consumed so a progress bar can
follow a stream whose row count is unknown in advance.

Row numbers are 1-based data rows: in a CSV the header is not counted (row 1 is the first
record under the header, whatever number of physical lines a quoted field spans); in JSON Lines
row N is line N.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

from gtmsync.kit.errors import UserError

# Quoted CSV fields (descriptions) can be long; the stdlib default of 128 KiB is too tight.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

SUPPORTED_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".csv.gz", ".jsonl.gz", ".ndjson.gz")
_SNIFF_BYTES = 64 * 1024

Values = list[str | None]


class FileRefusedError(UserError):
    """The file cannot be loaded at all; nothing from it has been written."""


@dataclass(frozen=True)
class RowProblem:
    """A record that could not even be split into values (bad JSON, too many CSV fields)."""

    reason: str


class RecordSource(Protocol):
    """What the loader reads from: the columns present, then rows of values in a chosen order."""

    @property
    def name(self) -> str: ...

    @property
    def columns(self) -> Sequence[str] | None:
        """The header; None when the source is empty (no header, no records)."""
        ...

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Values | RowProblem]]:
        """Yield (row number, values of `wanted` in that order, None where absent)."""
        ...

    def bytes_read(self) -> int: ...


def normalise_header(name: str) -> str:
    """`Platform ID`, `platform-id` and `PLATFORM_ID` all name the `platform_id` column."""
    return "_".join(name.strip().lower().replace("-", " ").split())


def format_of(path: Path) -> str:
    """'csv' or 'jsonl', from the file name; anything else is refused with the accepted list."""
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return "csv" if suffix.startswith(".csv") else "jsonl"
    raise FileRefusedError(
        f"{path}: cannot tell the file format from its name.",
        field="file",
        fix=f"Name it with one of {', '.join(SUPPORTED_SUFFIXES)}.",
    )


class _CountingReader(io.RawIOBase):
    """Counts bytes as they are read, for progress over streams that cannot `tell()`."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def _text(stream: IO[bytes], name: str) -> tuple[IO[str], _CountingReader]:
    counter = _CountingReader(stream)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    _check_utf8(buffered, name)
    # utf-8-sig drops the byte-order mark Excel puts at the start of "CSV UTF-8" files.
    text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")
    return text, counter


def _check_utf8(buffered: io.BufferedReader[Any], name: str) -> None:
    """Refuse a non-UTF-8 file before any row is written, judged on its first 64 KiB."""
    head = buffered.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise not_utf8(name, exc) from None


def not_utf8(name: str, exc: UnicodeDecodeError) -> FileRefusedError:
    return FileRefusedError(
        f"{name} is not UTF-8 text (undecodable byte near offset {exc.start}).",
        field="file",
        fix="Save it as UTF-8 (in Excel: 'CSV UTF-8 (Comma delimited)').",
    )


class CsvSource:
    """Records of a CSV file with a header row; header names are matched case-insensitively."""

    def __init__(self, stream: IO[bytes], *, name: str) -> None:
        self.name = name
        self._text, self._counter = _text(stream, name)
        self._reader = csv.reader(self._text)
        try:
            header = next(self._reader, None)
        except UnicodeDecodeError as exc:
            raise not_utf8(name, exc) from None
        self.columns: list[str] | None = (
            [normalise_header(h) for h in header] if header is not None else None
        )

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Values | RowProblem]]:
        header = self.columns or []
        position = {col: i for i, col in reversed(list(enumerate(header)))}
        picks = [position.get(col, -1) for col in wanted]
        width = len(header)
        identity = picks == list(range(width))  # the header is exactly the wanted columns
        row_no = 0
        try:
            for record in self._reader:
                row_no += 1
                if not record:
                    continue  # a blank line: counted, so row numbers match a spreadsheet's
                if len(record) != width:
                    if len(record) > width:
                        yield (
                            row_no,
                            RowProblem(
                                f"row has {len(record)} values but the header has {width} columns"
                            ),
                        )
                        continue
                    record.extend([""] * (width - len(record)))
                if identity:
                    yield row_no, cast("Values", record)
                else:
                    yield row_no, [record[i] if i >= 0 else None for i in picks]
        except UnicodeDecodeError as exc:
            raise not_utf8(self.name, exc) from None
        except csv.Error as exc:
            raise FileRefusedError(
                f"{self.name}: CSV is malformed after row {row_no} ({exc}).",
                field="file",
                fix="Check the quoting around that row.",
            ) from None

    def bytes_read(self) -> int:
        return self._counter.count


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


class JsonlSource:
    """One JSON object per line; the first object's keys are the columns checked up front.

    Later objects may omit optional keys or add others: values are looked up by key.
    """

    def __init__(self, stream: IO[bytes], *, name: str) -> None:
        self.name = name
        self._text, self._counter = _text(stream, name)
        self._first: tuple[int, dict[str, Any]] | None = None
        self.columns: list[str] | None = None
        line_no = 0
        try:
            for line in self._text:
                line_no += 1
                if not line.strip():
                    continue
                record = _parse_json_object(line)
                if isinstance(record, RowProblem):
                    raise FileRefusedError(
                        f"{name}: line {line_no} is not a JSON object ({record.reason}).",
                        field="file",
                        fix='Each line must hold one object such as {"platform_id": "C1"}.',
                    )
                self._first = (line_no, record)
                self.columns = list(record)
                break
        except UnicodeDecodeError as exc:
            raise not_utf8(name, exc) from None
        self._line_no = line_no

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Values | RowProblem]]:
        if self._first is not None:
            first_no, first = self._first
            yield first_no, [_as_text(first.get(col)) for col in wanted]
        line_no = self._line_no
        try:
            for line in self._text:
                line_no += 1
                if not line.strip():
                    continue
                record = _parse_json_object(line)
                if isinstance(record, RowProblem):
                    yield line_no, record
                    continue
                yield line_no, [_as_text(record.get(col)) for col in wanted]
        except UnicodeDecodeError as exc:
            raise not_utf8(self.name, exc) from None

    def bytes_read(self) -> int:
        return self._counter.count


def _parse_json_object(line: str) -> dict[str, Any] | RowProblem:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return RowProblem(f"not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(record, dict):
        return RowProblem("line holds JSON but not an object")
    return record


def open_source(stream: IO[bytes], *, name: str, fmt: str) -> CsvSource | JsonlSource:
    """A reader over an already open byte stream (a file, a pipe, an upload)."""
    return CsvSource(stream, name=name) if fmt == "csv" else JsonlSource(stream, name=name)


def require_file(path: Path) -> None:
    if not path.is_file():
        raise FileRefusedError(
            f"{path} does not exist or is not a file.",
            field="file",
            fix="Check the path (relative paths start from the current folder).",
        )


class FileSource:
    """A file on disk opened for loading: format from the name, transparent gunzip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        require_file(path)
        fmt = format_of(path)
        self.size = path.stat().st_size
        self._raw: IO[bytes] = path.open("rb")
        self._gz = path.name.lower().endswith(".gz")
        stream: IO[bytes] = (
            gzip.GzipFile(fileobj=self._raw) if self._gz else self._raw  # type: ignore[assignment]
        )
        try:
            self.source = open_source(stream, name=str(path), fmt=fmt)
        except (OSError, EOFError) as exc:
            self._raw.close()
            raise FileRefusedError(
                f"{path} could not be read ({exc}).", field="file", fix="Check the file."
            ) from None
        except BaseException:
            self._raw.close()
            raise

    def bytes_read(self) -> int:
        """Bytes of the file on disk consumed so far (compressed bytes for .gz files)."""
        return self._raw.tell() if self._gz else self.source.bytes_read()

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
