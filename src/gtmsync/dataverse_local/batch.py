"""`$batch`: multipart/mixed requests, atomic change sets, `$n` references (spec §4).

The whole batch runs in one database transaction; each top-level request and each change
set runs in a SAVEPOINT that is rolled back when it fails, so a failed request leaves no
trace, a change set is all-or-nothing, and what succeeded before a failure stays (batches
are `ExecuteMultiple`, not a transaction). Inner requests go through the same dispatcher as
top-level ones.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from gtmsync.dataverse_local import errors
from gtmsync.dataverse_local.context import Call, Headers, Reply

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_REF = re.compile(r"^\$(\d+)(/.*)?$")


@dataclass
class Part:
    headers: Headers
    method: str
    url: str
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    parts: list[Part] = field(default_factory=list)


def _boundary(content_type: str | None) -> str:
    match = _BOUNDARY.search(content_type or "")
    if not match:
        raise errors.bad_request(
            "The $batch request needs Content-Type: multipart/mixed;boundary=batch_<id>.",
            "0x80060888",
        )
    return match.group(1)


def _split(body: bytes, boundary: str) -> list[bytes]:
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.removeprefix(b"\r\n").removeprefix(b"\n"))
    return parts


def _head_and_body(chunk: bytes) -> tuple[list[str], bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = chunk.find(sep)
        if idx != -1:
            head = chunk[:idx].decode("utf-8")
            rest = chunk[idx + len(sep) :]
            return [line for line in head.splitlines() if line], rest
    return [line for line in chunk.decode("utf-8").splitlines() if line], b""


def _headers(lines: list[str]) -> Headers:
    items = []
    for line in lines:
        name, _, value = line.partition(":")
        items.append((name.strip(), value.strip()))
    return Headers(items)


def _strip_trailing_newline(data: bytes) -> bytes:
    return data.removesuffix(b"\r\n").removesuffix(b"\n")


def _parse_request(chunk: bytes) -> Part:
    mime_lines, inner = _head_and_body(chunk)
    mime = _headers(mime_lines)
    request_lines, body = _head_and_body(inner)
    if not request_lines:
        raise errors.bad_request("A $batch part has no request line.", "0x80060888")
    words = request_lines[0].split(" ")
    if len(words) < 2:
        raise errors.bad_request(
            f"Invalid request line in $batch: '{request_lines[0]}'.", "0x80060888"
        )
    return Part(
        headers=_headers(request_lines[1:]),
        method=words[0].upper(),
        url=words[1],
        body=_strip_trailing_newline(body).strip(),
        content_id=mime.get("Content-ID"),
    )


def parse(body: bytes, content_type: str | None) -> list[Part | ChangeSet]:
    items: list[Part | ChangeSet] = []
    for chunk in _split(body, _boundary(content_type)):
        lines, inner = _head_and_body(chunk)
        headers = _headers(lines)
        part_type = (headers.get("Content-Type") or "").lower()
        if part_type.startswith("multipart/mixed"):
            changeset = ChangeSet()
            for sub in _split(inner, _boundary(headers.get("Content-Type"))):
                part = _parse_request(sub)
                if part.method == "GET":
                    raise errors.bad_request(
                        "GET requests are not allowed inside a change set.", "0x80060888"
                    )
                if part.content_id is None:
                    # Reported for Dataverse by third-party tools (spec §4.1, [obs]).
                    raise errors.bad_request("Content-ID header not present", "0x80060888")
                changeset.parts.append(part)
            items.append(changeset)
        else:
            items.append(_parse_request(chunk))
    return items


def _count(items: list[Part | ChangeSet]) -> int:
    return sum(len(i.parts) if isinstance(i, ChangeSet) else 1 for i in items)


# ---- execution ------------------------------------------------------------------------------


def _resolve_url(url: str, refs: dict[str, str]) -> tuple[str, str]:
    """Inner URL (absolute, root-relative, relative or `$n…`) → (path, query string)."""
    match = _REF.match(url.split("?", 1)[0])
    if match:
        target = refs.get(match.group(1))
        if target is None:
            raise errors.bad_request(
                f"Content-ID Reference: '${match.group(1)}' does not exist in the batch context.",
                "0x0",
            )
        url = target + (match.group(2) or "") + (("?" + url.split("?", 1)[1]) if "?" in url else "")
    path, _, query = url.partition("?")
    if "/api/data/" in path:
        path = (
            path.split("/api/data/", 1)[1].split("/", 1)[1]
            if "/" in path.split("/api/data/", 1)[1]
            else ""
        )
    return path.lstrip("/"), query


def _resolve_body(body: bytes, refs: dict[str, str]) -> bytes:
    if b"$" not in body or not body.strip():
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body

    def fix(value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            match = _REF.match(value)
            if match and (key.endswith("@odata.bind") or key == "@odata.id"):
                target = refs.get(match.group(1))
                if target is None:
                    raise errors.bad_request(
                        f"Content-ID Reference: '${match.group(1)}' does not exist in the "
                        "batch context.",
                        "0x0",
                    )
                return target + (match.group(2) or "")
            return value
        if isinstance(value, dict):
            return {k: fix(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v, key) for v in value]
        return value

    return json.dumps(fix(data)).encode()


def _run_part(call: Call, part: Part, refs: dict[str, str]) -> Reply:
    from gtmsync.dataverse_local.webapi import dispatch  # webapi imports batch: resolve late

    try:
        path, query = _resolve_url(part.url, refs)
        inner = Call(
            store=call.store,
            conn=call.conn,
            principal=call.principal,
            settings=call.settings,
            service_root=call.service_root,
            method=part.method,
            path=urllib.parse.unquote(path),
            query=dict(urllib.parse.parse_qsl(query, keep_blank_values=True)),
            headers=part.headers,
            body=_resolve_body(part.body, refs),
            in_batch=True,
        )
        if inner.path.strip("/") == "$batch":
            raise errors.bad_request("Nested $batch requests are not supported.", "0x80060888")
        reply = dispatch(inner)
    except errors.DataverseLocalError as exc:
        return Reply.error(exc)
    entity_id = reply.header("OData-EntityId")
    if entity_id and reply.header("Location") is None:
        reply.headers.append(("Location", entity_id))
    if part.method == "GET" and reply.status == 200:
        reply.headers = [
            (k, v + "; odata.streaming=true" if k.lower() == "content-type" and "json" in v else v)
            for k, v in reply.headers
        ]
    return reply


def _render_http(reply: Reply, content_id: str | None) -> list[str]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines.append("")
    lines.append(f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}")
    lines.extend(f"{k}: {v}" for k, v in reply.headers)
    lines.append("")
    lines.append(reply.body.decode("utf-8"))
    return lines


def execute(call: Call) -> Reply:
    items = parse(call.body, call.headers.get("Content-Type"))
    if _count(items) > call.settings.batch_limit:
        raise errors.bad_request(
            f"The number of requests in a batch exceeds the limit of {call.settings.batch_limit}.",
            "0x80060888",
        )
    continue_on_error = "odata.continue-on-error" in call.prefer
    boundary = f"batchresponse_{uuid.uuid4()}"
    out: list[str] = []
    outer_status = 200
    refs: dict[str, str] = {}
    for item in items:
        out.append(f"--{boundary}")
        if isinstance(item, Part):
            savepoint = call.conn.begin_nested()
            generation = call.store.schema_generation
            reply = _run_part(call, item, refs)
            if reply.status >= 400:
                savepoint.rollback()
                if call.store.schema_generation != generation:
                    call.store.reload_schema(call.conn)
            else:
                savepoint.commit()
            out.extend(_render_http(reply, item.content_id))
            failed = reply if reply.status >= 400 else None
        else:
            failed = _run_changeset(call, item, refs, out)
        if failed is not None and not continue_on_error:
            outer_status = failed.status
            break
    out.append(f"--{boundary}--")
    out.append("")
    headers = [("Content-Type", f"multipart/mixed; boundary={boundary}"), ("OData-Version", "4.0")]
    if continue_on_error:
        headers.append(("Preference-Applied", "odata.continue-on-error"))
    return Reply(outer_status, headers, "\r\n".join(out).encode())


def _run_changeset(
    call: Call, changeset: ChangeSet, refs: dict[str, str], out: list[str]
) -> Reply | None:
    """All-or-nothing; on failure the change set answers with the one failing response."""
    savepoint = call.conn.begin_nested()
    generation = call.store.schema_generation
    local_refs = dict(refs)
    replies: list[tuple[Part, Reply]] = []
    for part in changeset.parts:
        reply = _run_part(call, part, local_refs)
        if reply.status >= 400:
            savepoint.rollback()
            if call.store.schema_generation != generation:
                call.store.reload_schema(call.conn)
            out.extend(_render_http(reply, part.content_id))
            return reply
        replies.append((part, reply))
        entity_id = reply.header("OData-EntityId")
        if part.content_id and entity_id:
            local_refs[part.content_id] = entity_id
    savepoint.commit()
    refs.update(local_refs)
    boundary = f"changesetresponse_{uuid.uuid4()}"
    out.append(f"Content-Type: multipart/mixed; boundary={boundary}")
    out.append("")
    for part, reply in replies:
        out.append(f"--{boundary}")
        out.extend(_render_http(reply, part.content_id))
    out.append(f"--{boundary}--")
    return None
