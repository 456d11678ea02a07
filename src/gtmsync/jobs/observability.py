"""What a worker tells operators: job context on every log line, job and record metrics, and
a Prometheus port per worker process.

`tasks.py` imports this module (its one line for observability); importing it instruments the
process's huey instance through huey's own hooks, so no task body changes:

- **Log context.** A `pre_execute` hook sets `job_id`, `task` and (when the task takes an
  `org_id` argument) `org_id` in the context variables `kit.logging` writes on every JSON
  line; `post_execute` clears them. Huey runs a task in the thread that ran the hook, so
  everything the task logs, down to the Dataverse client's retries, carries them.
- **Job metrics.** Started, finished by outcome, and duration, by task name.
- **Record metrics.** Export records by outcome and import records read/stored are counted
  from committed row changes (SQLAlchemy session events on `export_items.status` and the
  `import_runs.records_*` counters). Counting at commit, not at flush, means a batch that is
  rolled back and retried is counted once, and the features need no metrics code.
- **Metrics port.** When `GTMSYNC_WORKER_METRICS_PORT` is set, the first worker thread of the
  process starts prometheus-client's HTTP server on it (huey's `on_startup` hook).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import uuid
from collections import Counter
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

from huey import Huey, signals
from huey.api import Task
from huey.exceptions import CancelExecution, RetryTask, TaskLockedException
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from gtmsync.jobs.queue import get_huey
from gtmsync.kit import metrics
from gtmsync.kit.logging import job_id_var, org_id_var, task_var
from gtmsync.settings import Settings, get_settings

log = logging.getLogger(__name__)

_HOOK = "gtmsync.observability"
_PENDING_KEY = "gtmsync.metrics.records"
# Table and column names rather than model imports: `jobs` sits below the features.
_EXPORT_ITEMS = "export_items"
_IMPORT_RUNS = "import_runs"
_IMPORT_COUNTERS = {
    "records_read": "read",
    "records_stored": "stored",
    "records_deleted": "deleted",
    "records_excluded": "excluded",
}
_PENDING_STATUS = "pending"


@dataclass
class _Running:
    started: float
    tokens: list[tuple[Any, Token[str | None]]] = field(default_factory=list)


_local = threading.local()


_signatures: dict[str, inspect.Signature | None] = {}


def _signature(task_class: type[Task]) -> inspect.Signature | None:
    """The signature of the function a task class wraps (huey keeps it in a closure)."""
    name = f"{task_class.__module__}.{task_class.__name__}"
    if name not in _signatures:
        func = inspect.getclosurevars(task_class.execute).nonlocals.get("func")
        try:
            _signatures[name] = inspect.signature(func) if callable(func) else None
        except (TypeError, ValueError):
            _signatures[name] = None
    return _signatures[name]


def org_id_of(task: Task) -> str | None:
    """The task's `org_id` argument when it has one and it is a UUID (else None)."""
    signature = _signature(type(task))
    if signature is None:
        return None
    try:
        value = signature.bind_partial(*task.args, **task.kwargs).arguments.get("org_id")
    except TypeError:
        return None
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _before(task: Task) -> None:
    running = _Running(started=time.monotonic())
    org_id = org_id_of(task)
    for var, value in ((job_id_var, str(task.id)), (task_var, task.name), (org_id_var, org_id)):
        running.tokens.append((var, var.set(value)))
    _local.running = running
    metrics.JOBS_STARTED.labels(task=task.name).inc()
    log.info("job started")


def _outcome(exception: BaseException | None) -> str:
    if exception is None:
        return "succeeded"
    if isinstance(exception, TaskLockedException):
        return "locked"
    if isinstance(exception, RetryTask):
        return "retrying"
    if isinstance(exception, CancelExecution):
        return "canceled"
    return "failed"


def _finish(task: Task, outcome: str, exception: BaseException | None = None) -> None:
    running: _Running | None = getattr(_local, "running", None)
    _local.running = None
    seconds = time.monotonic() - running.started if running is not None else 0.0
    metrics.JOBS_FINISHED.labels(task=task.name, outcome=outcome).inc()
    metrics.JOB_SECONDS.labels(task=task.name).observe(seconds)
    fields: dict[str, object] = {"outcome": outcome, "duration_s": round(seconds, 3)}
    if exception is not None:
        fields["error"] = f"{type(exception).__name__}: {exception}"
    log.log(
        logging.WARNING if outcome == "failed" else logging.INFO,
        "job finished",
        extra={"extra_fields": fields},
    )
    if running is not None:
        for var, token in reversed(running.tokens):
            var.reset(token)


def _after(task: Task, _value: object, exception: BaseException | None) -> None:
    _finish(task, _outcome(exception), exception)


def _interrupted(_signal: str, task: Task, *_args: object, **_kwargs: object) -> None:
    """A worker stopped mid-task (huey skips post_execute then)."""
    if getattr(_local, "running", None) is not None:
        _finish(task, "interrupted")


_server_lock = threading.Lock()
_server_started = False


def start_metrics_server(settings: Settings | None = None) -> int | None:
    """Serve this process's metrics on `GTMSYNC_WORKER_METRICS_PORT`, once per process.

    A port already taken is logged, not raised: a worker that cannot publish metrics should
    still run jobs. Returns the port when serving.
    """
    global _server_started  # noqa: PLW0603 - one server per process
    settings = settings or get_settings()
    port = settings.worker_metrics_port
    if port is None:
        return None
    with _server_lock:
        if _server_started:
            return port
        try:
            metrics.serve(port, settings.worker_metrics_host)
        except OSError as exc:
            log.error(
                "worker metrics port unavailable",
                extra={
                    "extra_fields": {
                        "port": port,
                        "error": str(exc),
                        "fix": "give each worker process on this machine its own "
                        "GTMSYNC_WORKER_METRICS_PORT",
                    }
                },
            )
            return None
        _server_started = True
    log.info(
        "worker metrics served",
        extra={"extra_fields": {"host": settings.worker_metrics_host, "port": port}},
    )
    return port


def instrument(huey: Huey) -> Huey:
    """Add the job hooks and the metrics-port start-up hook to `huey` (idempotent)."""
    if getattr(huey, "_gtmsync_instrumented", False):
        return huey
    huey.pre_execute(name=_HOOK)(_before)
    huey.post_execute(name=_HOOK)(_after)
    huey.on_startup(name=_HOOK)(start_metrics_server)
    huey.signal(signals.SIGNAL_INTERRUPTED)(_interrupted)
    huey._gtmsync_instrumented = True
    return huey


# -- record counters from committed row changes -------------------------------------------------


def _table(obj: object) -> str | None:
    table = getattr(type(obj), "__table__", None)
    return getattr(table, "name", None)


def _collect(session: Session, _context: object) -> None:
    """after_flush: note status changes of export items and growth of import run counters
    (attribute history is still there at this point), to count them once committed."""
    found: Counter[tuple[str, str]] = Counter()
    for obj in (*session.new, *session.dirty):
        table = _table(obj)
        if table not in (_EXPORT_ITEMS, _IMPORT_RUNS):
            continue
        attrs = sa_inspect(obj).attrs
        if table == _EXPORT_ITEMS:
            history = attrs.status.history
            now = history.added[0] if history.added else None
            changed = now is not None and (not history.deleted or history.deleted[0] != now)
            if changed and now != _PENDING_STATUS:
                found["export", str(now)] += 1
            continue
        for column, kind in _IMPORT_COUNTERS.items():
            history = getattr(attrs, column).history
            if not history.added:
                continue
            before = history.deleted[0] if history.deleted else 0
            grown = int(history.added[0] or 0) - int(before or 0)
            if grown > 0:
                found["import", kind] += grown
    if found:
        session.info.setdefault(_PENDING_KEY, Counter()).update(found)


def _commit(session: Session) -> None:
    pending: Counter[tuple[str, str]] | None = session.info.pop(_PENDING_KEY, None)
    for (family, label), count in (pending or {}).items():
        if family == "export":
            metrics.EXPORT_RECORDS.labels(outcome=label).inc(count)
        else:
            metrics.IMPORT_RECORDS.labels(kind=label).inc(count)


def _rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def count_committed_records() -> None:
    """Install the session events behind the export and import record metrics (idempotent)."""
    for name, listener in (
        ("after_flush", _collect),
        ("after_commit", _commit),
        ("after_rollback", _rollback),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


instrument(get_huey())
count_committed_records()
