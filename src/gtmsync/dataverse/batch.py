"""`$batch` as multipart/mixed: encoding, decoding and mapping answers back to operations.

A batch is a list of items; each item is one `BatchOperation` or a `ChangeSet` of write
operations that Dataverse runs atomically. Every operation can carry `ref`, the caller's
handle for it (a platform record id, a row number), and `decode` + `map_results` give one
`OperationResult` per operation in the caller's order, so a failure is reported against
the caller's record and not against a part number.

Shapes handled (spec §4, OData 4.0 §11.7): answers in request order; a failed change set
answered by a single `application/http` part (its operations share that error and the
successful ones were rolled back); without `Prefer: odata.continue-on-error` processing
stops at the first failure, so later operations have no answer (`status is None`).
Content-IDs are unique across the whole batch, as Microsoft's SDK does.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from gtmsync.dataverse.errors import APIError, BatchFormatError, from_parts

MAX_BATCH_OPERATIONS = 1000
CRLF = "\r\n"
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")


@dataclass(frozen=True)
class BatchOperation:
    """One request inside a batch. `path` is relative to the API root (`accounts(…)`) or `$n`."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ref: Any = None


@dataclass(frozen=True)
class ChangeSet:
    operations: Sequence[BatchOperation]

    def __post_init__(self) -> None:
        for op in self.operations:
            if op.method.upper() == "GET":
                raise ValueError("GET is not allowed inside a change set: put it outside")


BatchItem = BatchOperation | ChangeSet


@dataclass(frozen=True)
class ResponsePart:
    status: int
    headers: httpx.Headers
    body: bytes
    content_id: str | None = None


@dataclass(frozen=True)
class ResponseGroup:
    """The answer to a change set that succeeded: one part per operation."""

    parts: list[ResponsePart]


@dataclass(frozen=True)
class OperationResult:
    operation: BatchOperation
    status: int | None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    error: APIError | None = None
    rolled_back: bool = False

    @property
    def ref(self) -> Any:
        return self.operation.ref

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400 and not self.rolled_back

    @property
    def attempted(self) -> bool:
        return self.status is not None

    @property
    def entity_id(self) -> uuid.UUID | None:
        link = self.headers.get("OData-EntityId") or self.headers.get("Location")
        if link and (match := _ENTITY_ID.search(link)):
            return uuid.UUID(match.group(1))
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def count_operations(items: Sequence[BatchItem]) -> int:
    return sum(len(i.operations) if isinstance(i, ChangeSet) else 1 for i in items)


def _operation_lines(op: BatchOperation, api_root: str, content_id: int | None) -> list[str]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    url = op.path if op.path.startswith(("$", "https://", "http://")) else f"{api_root}/{op.path}"
    lines += ["", f"{op.method.upper()} {url} HTTP/1.1"]
    headers = dict(op.headers)
    if op.body is not None:
        headers.setdefault("Content-Type", "application/json; type=entry")
    else:
        headers.setdefault("Accept", "application/json")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append("")
    lines.append(
        json.dumps(op.body, separators=(",", ":"), default=str) if op.body is not None else ""
    )
    return lines


def encode(
    items: Sequence[BatchItem], api_root: str, *, boundary: str | None = None
) -> tuple[str, bytes]:
    """(Content-Type header, body) for `POST {api_root}/$batch`."""
    total = count_operations(items)
    if total == 0:
        raise ValueError("a $batch needs at least one operation")
    if total > MAX_BATCH_OPERATIONS:
        raise ValueError(
            f"a $batch holds at most {MAX_BATCH_OPERATIONS} operations, got {total}: split it"
        )
    root = api_root.rstrip("/")
    batch_boundary = boundary or f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    next_id = 1
    for item in items:
        lines.append(f"--{batch_boundary}")
        if isinstance(item, BatchOperation):
            lines += _operation_lines(item, root, None)
            continue
        cs_boundary = f"changeset_{uuid.uuid4()}"
        lines += [f'Content-Type: multipart/mixed; boundary="{cs_boundary}"', ""]
        for op in item.operations:
            lines.append(f"--{cs_boundary}")
            lines += _operation_lines(op, root, next_id)
            next_id += 1
        lines += [f"--{cs_boundary}--", ""]
    lines += [f"--{batch_boundary}--", ""]
    return f'multipart/mixed; boundary="{batch_boundary}"', CRLF.join(lines).encode("utf-8")


def boundary_of(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    if not match:
        raise BatchFormatError(f"multipart response without a boundary: {content_type!r}")
    return match.group(1).strip()


def _split_head(block: bytes) -> tuple[list[str], bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = block.find(sep)
        if idx >= 0:
            return block[:idx].decode("utf-8", "replace").splitlines(), block[idx + len(sep) :]
    return block.decode("utf-8", "replace").splitlines(), b""


def _headers(lines: list[str]) -> httpx.Headers:
    headers = httpx.Headers()
    for line in lines:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip()] = value.strip()
    return headers


def _parts(body: bytes, boundary: str) -> list[bytes]:
    """The parts between boundaries; a body cut before its closing boundary is an error."""
    delimiter = b"--" + boundary.encode()
    parts: list[bytes] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            return parts
        parts.append(
            chunk.removeprefix(b"\r\n")
            .removeprefix(b"\n")
            .removesuffix(b"\r\n")
            .removesuffix(b"\n")
        )
    raise BatchFormatError("multipart body ended without its closing boundary (connection cut?)")


def _http_part(part_headers: httpx.Headers, payload: bytes) -> ResponsePart:
    head, body = _split_head(payload)
    if not head or not head[0].startswith("HTTP/"):
        raise BatchFormatError(f"batch part without an HTTP status line: {head[:1]!r}")
    try:
        status = int(head[0].split(" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise BatchFormatError(f"bad status line in batch part: {head[0]!r}") from exc
    return ResponsePart(
        status=status,
        headers=_headers(head[1:]),
        body=body.rstrip(b"\r\n"),
        content_id=part_headers.get("Content-ID"),
    )


def decode(content_type: str, body: bytes) -> list[ResponsePart | ResponseGroup]:
    """Top-level answers in order: a part per operation, a group per successful change set."""
    answers: list[ResponsePart | ResponseGroup] = []
    for raw in _parts(body, boundary_of(content_type)):
        head, payload = _split_head(raw)
        headers = _headers(head)
        kind = headers.get("Content-Type", "")
        if kind.lower().startswith("multipart/mixed"):
            inner = [
                _http_part(_headers(h), p)
                for h, p in (_split_head(x) for x in _parts(payload, boundary_of(kind)))
            ]
            answers.append(ResponseGroup(inner))
        else:
            answers.append(_http_part(headers, payload))
    return answers


def _result(
    op: BatchOperation, part: ResponsePart, *, rolled_back: bool = False
) -> OperationResult:
    error = from_parts(part.status, part.headers, part.body) if part.status >= 400 else None
    return OperationResult(op, part.status, part.headers, part.body, error, rolled_back)


def map_results(
    items: Sequence[BatchItem], answers: Sequence[ResponsePart | ResponseGroup]
) -> list[OperationResult]:
    """One result per operation, in the order the caller gave them."""
    results: list[OperationResult] = []
    pending = list(answers)
    for item in items:
        answer = pending.pop(0) if pending else None
        if isinstance(item, BatchOperation):
            if isinstance(answer, ResponseGroup):
                raise BatchFormatError("a change-set answer came back for a single operation")
            results.append(_result(item, answer) if answer else OperationResult(item, None))
            continue
        if answer is None:
            results += [OperationResult(op, None) for op in item.operations]
        elif isinstance(answer, ResponsePart) and answer.status < 400 and len(item.operations) == 1:
            results.append(_result(item.operations[0], answer))
        elif isinstance(answer, ResponsePart):
            failed = _result(item.operations[0], answer)
            results += [
                OperationResult(op, answer.status, answer.headers, answer.body, failed.error, True)
                for op in item.operations
            ]
        else:
            by_id = {p.content_id: p for p in answer.parts if p.content_id}
            for index, op in enumerate(item.operations):
                part = None
                if by_id:
                    part = by_id.get(str(_content_id_of(items, item, index)))
                elif index < len(answer.parts):
                    part = answer.parts[index]
                results.append(_result(op, part) if part else OperationResult(op, None))
    return results


def _content_id_of(items: Sequence[BatchItem], change_set: ChangeSet, index: int) -> int:
    next_id = 1
    for item in items:
        if item is change_set:
            return next_id + index
        if isinstance(item, ChangeSet):
            next_id += len(item.operations)
    raise ValueError("change set is not part of this batch")
