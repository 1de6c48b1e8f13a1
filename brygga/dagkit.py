"""The thin layer between Airflow and Brygga's plain-Python core, used by every DAG file.

Only this module (and ``dags/``, ``plugins/``) imports Airflow. Tasks get their peers and the
store from Airflow Connections here, so the same code runs on LocalExecutor and CeleryExecutor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from brygga import logmask
from brygga.config import STREAM_DEADLINES
from brygga.connections import PEERS, STORE_CONN_ID, PeerConfig, from_connection
from brygga.store import Store

log = logmask.get_logger("brygga.dagkit")
logmask.install()

OWNER = "brygga"


def on_failure(context: dict[str, Any]) -> None:
    """Failure callback (a task failed for good, its retries spent, or ran past its deadline): one
    masked, greppable line, and an audit row ``task.failed`` in Brygga's store — what the
    ``failed_tasks`` alert counts (best effort: a store that cannot be reached is only logged)."""
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    dag_id, task_id, run_id = getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?"), getattr(ti, "run_id", "?")
    error = f"{type(exc).__name__}: {exc}" if exc else "unknown"
    log.error("BRYGGA TASK FAILED dag=%s task=%s run=%s try=%s error=%s", dag_id, task_id, run_id,
              getattr(ti, "try_number", "?"), error)
    try:
        from brygga.personnummer import mask
        from brygga.store import ops

        with store().transaction() as s:
            ops.audit(s, f"airflow:{dag_id}", "task.failed", "task_instance", f"{dag_id}.{task_id}",
                      run_id=run_id, try_number=getattr(ti, "try_number", None), error=mask(error)[:500],
                      timeout=type(exc).__name__ == "AirflowTaskTimeout")
    except Exception as e:  # noqa: BLE001 - the failure is logged above whatever happens here
        log.warning("could not record the failed task in the store: %s", type(e).__name__)


#: Every DAG's start date (catchup is off everywhere: the date only has to lie in the past).
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    # One stuck task never blocks the next run: every task has a deadline of its own (a DAG may set
    # a longer one for a task that needs it); the peers' own deadlines are the Connections' timeouts.
    "execution_timeout": dt.timedelta(minutes=30),
    "on_failure_callback": on_failure,
}


def default_args(execution_timeout: dt.timedelta) -> dict[str, Any]:
    """DEFAULT_ARGS with a task deadline of the DAG's own (shorter than its dagrun_timeout)."""
    return {**DEFAULT_ARGS, "execution_timeout": execution_timeout}


def _connection(conn_id: str):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def peer(name: str, dag_id: str | None = None) -> PeerConfig:
    """The peer's settings from its Airflow Connection (``brygga_<name>``); a streamed reply's
    deadline, unless the Connection sets ``stream_timeout``, is what fits the running DAG
    (``config.STREAM_DEADLINES``)."""
    c = _connection(PEERS[name].conn_id)
    cfg = from_connection(
        name, conn_type=c.conn_type, host=c.host, port=c.port, schema=c.schema,
        login=c.login, password=c.password, extra=c.extra_dejson or {},
    )
    deadline = STREAM_DEADLINES.get(dag_id or _current_dag_id() or "")
    return dataclasses.replace(cfg, stream_default=deadline) if deadline else cfg


def _current_dag_id() -> str | None:
    """The DAG of the running task (None outside one)."""
    try:
        from airflow.sdk import get_current_context

        return str(get_current_context()["dag"].dag_id)
    except Exception:  # noqa: BLE001 - not in a task (a script, a test)
        return None


def environments() -> Any:
    """Ladok's and NyA's environments and what they make (``certificates.Pairing``), from their
    Connections (one that is not there is left out)."""
    from brygga.certificates import pairing, peer_environment

    envs = {}
    for name in ("ladok", "nya"):
        try:
            envs[name] = peer_environment(peer(name))
        except Exception as e:  # noqa: BLE001 - AirflowNotFoundException: that peer is not configured
            if type(e).__name__ != "AirflowNotFoundException":
                raise
    return pairing(envs)


def _refuse_mixed() -> None:
    """A production Ladok with a test NyA, or the reverse: the task fails at once, saying so."""
    p = environments()
    if p.refused:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(p.refused)


def ladok():
    """The Ladok adapter, from the ``brygga_ladok`` Connection (never paired with a NyA of
    another kind of environment: production with production, test with test)."""
    from adapters.ladok import LadokAdapter

    _refuse_mixed()
    return LadokAdapter(peer("ladok"))


def nya():
    """The NyA adapter, from the ``brygga_nya`` Connection (as ``ladok()``: no mixed pairing)."""
    from adapters.nya import NyaAdapter

    _refuse_mixed()
    return NyaAdapter(peer("nya"))


def folkbokforing():
    """The population-register adapter, from the ``brygga_folkbokforing`` Connection."""
    from adapters.folkbokforing import FolkbokforingAdapter

    return FolkbokforingAdapter(peer("folkbokforing"))


def schedule(format: str | None = None):
    """The scheduling-system adapter, from the ``brygga_schema`` Connection (``format`` overrides
    its ``extra.format`` for one run)."""
    from adapters.schema import ScheduleAdapter

    return ScheduleAdapter(peer("schema"), format=format)


def arkiv():
    """The archive adapter, from the ``brygga_arkiv`` Connection."""
    from adapters.arkiv import ArchiveAdapter

    return ArchiveAdapter(peer("arkiv"))


def actor(context: dict[str, Any], flow: Any = None) -> str:
    """Who acts in a run, for the audit log: the user who triggered it, else the flow's actor
    (``brygga:<flow>``, its descriptor's) when given, else the DAG itself (``airflow:<dag_id>``)."""
    run = context.get("dag_run")
    user = getattr(run, "triggering_user_name", None)
    if user:
        return str(user)
    if flow is not None:
        return str(flow.actor)
    return f"airflow:{getattr(run, 'dag_id', None) or getattr(context.get('dag'), 'dag_id', 'unknown')}"


@contextlib.contextmanager
def no_retry() -> Iterator[None]:
    """A run that cannot go on because of its configuration (``NotConfigured``: a form value, a
    Connection setting, a plan that is no longer the dry run's; a Connection's extra Brygga cannot
    use, ``SettingsError``) fails the task at once: no retry makes it right. So does a peer's
    answer that is not transient (a feed page that cannot be parsed, a refusal): the same request
    in 20 seconds gets the same answer."""
    from adapters.http import PeerError
    from brygga.config import SettingsError
    from brygga.flows.kit.flow import NotConfigured

    try:
        yield
    except PeerError as e:
        if e.transient:
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(e)) from e
    except (NotConfigured, SettingsError) as e:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(e)) from e


def total(counts: Iterable[dict[str, Any]]) -> dict[str, int]:
    """The sum of mapped tasks' counts (numbers only).

    Airflow hands mapped results over as a lazy sequence; iterating it fetches item after item until
    one is not found, which Airflow logs as an error ("XCom not found ... offset=N") on every run. A
    slice is fetched in one request and ends where the results end."""
    out: Counter[str] = Counter()
    for c in (counts[:] if isinstance(counts, Sequence) else counts):
        out.update({k: v for k, v in c.items() if isinstance(v, int) and not isinstance(v, bool)})
    return dict(out)


def store() -> Store:
    """Brygga's store from the ``brygga_store`` Connection (extra ``sqlalchemy_url``)."""
    url = (_connection(STORE_CONN_ID).extra_dejson or {}).get("sqlalchemy_url")
    if not url:
        raise RuntimeError(f"Connection {STORE_CONN_ID} has no extra.sqlalchemy_url")
    return Store(url)


#: The Connection of the mail server alerts go through (conn_type smtp; ``extra.from_email``).
SMTP_CONN_ID = "brygga_smtp"


def email_notifier():
    """Alerts' notifier: the SMTP provider's ``SmtpNotifier`` over the ``brygga_smtp`` Connection,
    one message each, its Message-ID the outbox row's idempotency key (a resend after a crash is
    the same message to the receiving client)."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    def notify(to: list[str], subject: str, html: str, message_id: str) -> None:
        SmtpNotifier(to=to, subject=subject, html_content=html, smtp_conn_id=SMTP_CONN_ID,
                     custom_headers={"Message-ID": message_id}).notify({})

    return notify


def webhook_notifier():
    """Alerts' webhook channel: the HTTP provider's ``HttpNotifier`` over the Connection a
    recipient ``webhook:<conn_id>`` names (conn_type http, its host the webhook's whole URL, as
    Teams and Slack hand it out). The body is ``{"text": …}``, which both read; the outbox row's
    idempotency key goes along as ``Idempotency-Key``."""
    from airflow.providers.http.notifications.http import HttpNotifier

    def post(conn_id: str, subject: str, text: str, key: str) -> None:
        HttpNotifier(http_conn_id=conn_id, json={"text": f"**{subject}**\n\n{text}"},
                     headers={"Content-Type": "application/json", "Idempotency-Key": key},
                     extra_options={"timeout": 30}).notify({})

    return post
