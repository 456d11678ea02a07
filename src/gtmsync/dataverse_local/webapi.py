"""The ASGI app serving the Dataverse Web API under `/api/data/v9.0|v9.1|v9.2/`.

`create_webapi_app(store)` is the data plane only: the full server (`app.py`) mounts it
behind authentication, throttling and fault injection, which leave the caller's `Principal`
in `request.state.principal`. Tests of the data plane pass `principal_resolver` instead.

`dispatch(call)` routes one request; `$batch` calls it again for every inner request, so a
request behaves the same inside and outside a batch.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gtmsync.dataverse_local import (
    aggregate,
    batch,
    bulk,
    changes,
    errors,
    functions,
    metadata,
    query,
    records,
)
from gtmsync.dataverse_local.context import Call, Headers, Reply, WebApiSettings
from gtmsync.dataverse_local.principal import Access, Principal
from gtmsync.dataverse_local.schema import Table
from gtmsync.dataverse_local.store import Store

VERSIONS = frozenset({"v9.0", "v9.1", "v9.2"})
PrincipalResolver = Callable[[Request], Principal]


class _Rollback(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def split_path(path: str) -> list[str]:
    """Split a resource path on `/` outside parentheses and quotes."""
    segments: list[str] = []
    depth = 0
    quoted = False
    buf: list[str] = []
    for ch in path:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "/" and depth == 0 and not quoted:
            segments.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    segments.append("".join(buf))
    return [s for s in segments if s != ""]


def _name_and_key(segment: str) -> tuple[str, str | None]:
    if segment.endswith(")") and "(" in segment:
        name, _, rest = segment.partition("(")
        return name, rest[:-1]
    return segment, None


def dispatch(call: Call) -> Reply:
    """Route one Web API request to its handler."""
    segments = split_path(call.path)
    method = call.method
    if not segments:
        return metadata.service_document(call)
    head, key_text = _name_and_key(segments[0])
    if head == "$metadata":
        return metadata.csdl(call)
    if head == "$batch":
        if method != "POST":
            raise errors.DataverseLocalError(405, "0x80060888", "$batch accepts POST only.")
        return batch.execute(call)
    if head in {"EntityDefinitions", "RelationshipDefinitions", "GlobalOptionSetDefinitions"}:
        return metadata.handle(call, segments)
    if head == "BulkDelete" and method == "POST":
        return bulk.bulk_delete(call)
    if head == "CreateEntities" and method == "POST":
        return metadata.create_entities(call)
    if head in functions.UNBOUND:
        return functions.call_unbound(call, head, key_text)
    table = call.store.catalogue.by_set(head)
    if table is None:
        raise errors.resource_not_found(head)
    if key_text is None:
        if len(segments) == 1:
            if (
                method == "GET"
                and {"fetchXml", "sql", "savedQuery", "userQuery"} & call.query.keys()
            ):
                raise errors.DataverseLocalError(
                    501,
                    "0x80060888",
                    "FetchXML, ?sql= and saved queries are not supported by "
                    "the local server; use $filter/$select/$orderby.",
                )
            if method == "GET":
                tracking_page = 'istracking="True"' in call.query.get("$skiptoken", "")
                if "$apply" in call.query:
                    return aggregate.apply(call, table, call.query["$apply"])
                if (
                    "$deltatoken" in call.query
                    or "odata.track-changes" in call.prefer
                    or tracking_page
                ):
                    return changes.read(call, table)
                return query.list_rows(call, table, query.parse_options(call.query))
            if method == "POST":
                return records.create(call, table)
            raise errors.DataverseLocalError(
                405, "0x80060888", f"{method} is not allowed on a collection."
            )
        second = segments[1]
        if second == "$count" and method == "GET":
            if "$deltatoken" in call.query:
                return changes.count(call, table)
            return query.count_text(call, table, query.parse_options(call.query))
        if second.startswith("Microsoft.Dynamics.CRM.") and method == "POST":
            return bulk.execute(call, table, second.removeprefix("Microsoft.Dynamics.CRM."))
        raise errors.resource_not_found(second)
    key = records.parse_key(table, key_text)
    if len(segments) == 1:
        if method == "GET":
            return records.retrieve(call, table, key)
        if method == "PATCH":
            return records.patch(call, table, key)
        if method == "DELETE":
            return records.delete(call, table, key)
        raise errors.DataverseLocalError(
            405, "0x80060888", f"{method} is not allowed on an entity."
        )
    return _entity_member(call, table, key, segments[1:])


def _entity_member(call: Call, table: Table, key: records.Key, rest: list[str]) -> Reply:
    name, child_key = _name_and_key(rest[0])
    navs = table.navigation_properties()
    collections = call.store.catalogue.collection_navigations(table.name)
    method = call.method
    is_ref = len(rest) > 1 and rest[-1] == "$ref"
    if name in navs:
        if is_ref:
            if method == "PUT":
                ref = call.json_body().get("@odata.id")
                return records.set_reference(call, table, key, name, ref)
            if method == "DELETE":
                return records.set_reference(call, table, key, name, None)
        if method == "GET" and len(rest) == 1:
            row = records.find(call, table, key)
            if row is None:
                raise records.missing(table, key)
            nav = navs[name]
            target = call.store.catalogue.tables[nav.target]
            target_id = row[nav.attribute]
            if not target_id:
                return Reply.empty(204)
            return records.retrieve(call, target, records.parse_key(target, target_id))
        raise errors.DataverseLocalError(
            405, "0x80060888", f"{method} is not supported on '{name}'."
        )
    if name in collections:
        coll = collections[name]
        if method == "PUT" and len(rest) == 1 and coll.table == "activityparty":
            return records.replace_activity_parties(call, table, key, coll)
        if is_ref and method == "POST":
            return records.add_to_collection(
                call, table, key, name, call.json_body().get("@odata.id", "")
            )
        if is_ref and method == "DELETE":
            target = call.store.catalogue.tables[coll.table]
            ref = call.query.get("$id") or f"{target.entity_set}({child_key})"
            return records.remove_from_collection(call, table, key, name, ref)
        if method == "GET":
            row = records.find(call, table, key)
            if row is None:
                raise records.missing(table, key)
            child = call.store.catalogue.tables[coll.table]
            if is_ref:
                return _collection_refs(call, child, coll.attribute, row[table.primary_id])
            sql = call.store.tables[child.name]
            extra = sql.c[coll.attribute] == row[table.primary_id]
            if len(rest) > 1 and rest[1] == "$count":
                reply = query.count_text(call, child, query.parse_options(call.query), extra)
                reply.body = "\ufeff".encode() + reply.body
                return reply
            return query.list_rows(call, child, query.parse_options(call.query), extra_where=extra)
        raise errors.DataverseLocalError(
            405, "0x80060888", f"{method} is not supported on '{name}'."
        )
    if (
        name == "Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
        and table.name == "systemuser"
        and method == "GET"
    ):
        call.require(table, Access.READ)
        row = records.find(call, table, key)
        if row is None:
            raise records.missing(table, key)
        return functions.retrieve_user_privileges(call, uuid.UUID(str(row[table.primary_id])))
    if len(rest) == 1:
        if method == "GET":
            return records.get_property(call, table, key, name)
        if method == "PUT":
            return records.put_property(call, table, key, name)
        if method == "DELETE":
            return records.delete_property(call, table, key, name)
    if name.startswith("Microsoft.Dynamics.CRM."):
        raise errors.DataverseLocalError(
            501, "0x80060888", f"Bound operation '{name}' is not supported."
        )
    raise errors.unknown_property(table.name, name)


def _collection_refs(call: Call, child: Table, attribute: str, parent_id: str) -> Reply:
    """`GET <set>(<id>)/<collection>/$ref`: the related rows as `@odata.id` references."""
    call.require(child, Access.READ)
    sql = call.store.tables[child.name]
    pk = sql.c[child.primary_id]
    ids = call.conn.execute(sa.select(pk).where(sql.c[attribute] == parent_id).order_by(pk))
    refs = [{"@odata.id": f"{call.service_root}/{child.entity_set}({i})"} for (i,) in ids]
    return Reply.json(200, {"@odata.context": call.metadata_url("Collection($ref)"), "value": refs})


def run(call: Call) -> Reply:
    """Dispatch, turning Dataverse errors into error replies."""
    try:
        return dispatch(call)
    except errors.DataverseLocalError as exc:
        details = call.wants_annotation("Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus")
        return Reply.error(exc, details=details)


def execute(
    store: Store,
    principal: Principal,
    settings: WebApiSettings,
    *,
    service_root: str,
    method: str,
    path: str,
    query_string: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> Reply:
    """A whole top-level request in its own transaction; failed writes roll back."""
    query_items = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
    transaction = store.read if method == "GET" else store.write
    generation = store.schema_generation
    try:
        with transaction() as conn:
            call = Call(
                store=store,
                conn=conn,
                principal=principal,
                settings=settings,
                service_root=service_root,
                method=method,
                path=path,
                query=query_items,
                headers=Headers(headers),
                body=body,
            )
            reply = run(call)
            if reply.status >= 400 and path.strip("/") != "$batch":
                raise _Rollback(reply)
            return reply
    except _Rollback as rollback:
        if store.schema_generation != generation:
            store.reload_schema()  # the rolled-back request had changed the catalogue
        return rollback.reply
    except BaseException:
        if store.schema_generation != generation:
            store.reload_schema()
        raise


def create_webapi_app(
    store: Store,
    *,
    principal_resolver: PrincipalResolver | None = None,
    settings: WebApiSettings | None = None,
) -> Starlette:
    """The Web API data plane as an ASGI app (see the module docstring for how it is composed)."""
    web_settings = settings or WebApiSettings()

    async def endpoint(request: Request) -> Response:
        version = request.path_params["version"]
        if version not in VERSIONS:
            exc = errors.resource_not_found(version)
            return Response(exc.body(), exc.status, exc.headers())
        principal: Principal | None
        if principal_resolver is not None:
            principal = principal_resolver(request)
        else:
            principal = getattr(request.state, "principal", None)
        if principal is None:
            return Response(
                errors.DataverseLocalError(
                    401, "0x80072560", "The user is not a member of the organization."
                ).body(),
                401,
                {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
            )
        body = await request.body()
        root = str(request.base_url).rstrip("/") + f"/api/data/{version}"
        reply = await run_in_threadpool(
            execute,
            store,
            principal,
            web_settings,
            service_root=root,
            method=request.method,
            path=request.path_params.get("path", ""),
            query_string=request.url.query,
            headers=list(request.headers.items()),
            body=body,
        )
        response = Response(reply.body, reply.status)
        for name, value in reply.headers:
            response.headers.append(name, value)
        return response

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    return Starlette(
        routes=[
            Route("/api/data/{version}/", endpoint, methods=methods),
            Route("/api/data/{version}/{path:path}", endpoint, methods=methods),
        ]
    )
