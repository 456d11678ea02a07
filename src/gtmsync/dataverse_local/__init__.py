"""A Dataverse Web API-compatible server with Entra ID-like sign-in, for demo and tests.

Spec: `../shared/design/dataverse-webapi.md`. The data plane (`webapi.create_webapi_app`) is
an ASGI app over its own SQLAlchemy store (`store.Store`); `app.py` composes it with sign-in,
roles, throttling and fault injection.

Supported by the data plane:

- Paths `/api/data/v9.0|v9.1|v9.2/`; service document; `$metadata` CSDL (with the
  change-tracking annotation under `?annotations=true`).
- Standard tables of spec §1.5 with Microsoft's option values, lengths and requirement levels;
  lookups as `_x_value` plus navigation properties, polymorphic ones per target
  (`parentcustomerid_account`, `regardingobjectid_account_task`…).
- Reads: `$select`, `$filter` (comparisons, `and/or/not`, `contains/startswith/endswith` with
  LIKE wildcards, null checks, column-to-column, one level of navigation, case-insensitive
  strings, `''` escaping, lambda `any`/`all` over one-to-many navigations, parameter aliases,
  JSON arrays, and the `Microsoft.Dynamics.CRM.` query functions In, NotIn, Between, NotBetween,
  EqualUserId, NotEqualUserId, EqualBusinessId, NotEqualBusinessId, ContainValues,
  DoesNotContainValues, LastXHours/Days/Weeks, NextXHours/Days, OlderThanXHours/Days/Weeks,
  Last7Days, Next7Days, On, OnOrAfter, OnOrBefore, Today, Yesterday, Tomorrow, ThisMonth,
  ThisYear, Under, UnderOrEqual, NotUnder, Above, AboveOrEqual), `$orderby`, `$top`, `$count`,
  `/$count`, `$expand` (single- and collection-valued, nested `$select/$filter/$orderby/$top`,
  `/$ref`), keyset paging with opaque `$skiptoken`, `Prefer: odata.maxpagesize` (≤ 5,000),
  `Preference-Applied`, formatted-value, lookup and total-record-count annotations, conditional
  GET (304), `$apply` with `filter(...)/`, `groupby` and `aggregate` (sum, min, max, average,
  countdistinct, `$count`).
- Writes: POST (204 + `OData-EntityId`, or 201 with `return=representation`) with deep insert,
  PATCH update and upsert with `If-Match`/`If-None-Match`, DELETE, single-property
  GET/PUT/DELETE, `@odata.bind` (three URL forms, case-sensitive names, collection binds on
  create), alternate keys (none by default; created through `…/Keys`) incl. multi-part keys,
  `$ref` associate/disassociate, optimistic concurrency (412), duplicate detection when
  `MSCRM.SuppressDuplicateDetection: false`, column security (unreadable columns read as null
  and cannot be written), privileges from the caller's `Principal` (403 `0x80040220`),
  impersonation (`createdonbehalfby`).
- Activity parties: deep insert through `<activity>_activity_parties`, `PUT` replacing them all.
- `$batch` (change sets atomic, Content-ID references, continue-on-error, 1,000-request cap),
  `CreateMultiple`/`UpdateMultiple`/`UpsertMultiple` (all-or-nothing).
- Change tracking: `Prefer: odata.track-changes`, delta links `<version>!<timestamp>`,
  tombstones, paged initial sync, `/$count?$deltatoken=`, expiry (default 7 days).
- Metadata: `EntityDefinitions` (by `LogicalName` or `MetadataId`, `$select`, `$filter`,
  `$expand=Attributes`), `/Attributes` with type casts and `OptionSet`, `/Keys`; creating custom
  tables, columns (String, Memo, Integer, BigInt, Decimal, Double, Money, Boolean, DateTime,
  Picklist, MultiSelectPicklist) and alternate keys (also via `CreateEntities`), deleting custom
  ones, all persisted across restarts.
- Functions and actions: `WhoAmI`, `RetrieveTotalRecordCount`, `BulkDelete` (QueryExpression
  conditions Equal/NotEqual/In/NotIn/Null/NotNull; runs at once).

Not supported (answered with a Dataverse-shaped error, mostly 501): deep update, `$apply` beyond
filter/groupby/aggregate, `DeleteMultiple`, bound actions other than the bulk ones, N:N
relationships, `RelationshipDefinitions` content, FetchXML and `?sql=`, calculated/rollup
columns, fiscal-period query functions, currency conversion, `$expand` nextLinks on expanded
collections.
"""
