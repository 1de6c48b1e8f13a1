"""The console's actions: each parses its form, checks that the user may act here (and the
session's CSRF token), calls the flow function the CLI and the review DAGs call — or triggers the
review DAG run, as the user — and redirects back to the page with the outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Form, Request
from fastapi.responses import RedirectResponse

from brygga.connections import PeerConfig
from brygga.console import queries
from brygga.console.forms import int_or_none, root
from brygga.console.forms import nonce as form_nonce
from brygga.console.security import Principal, Tokens
from brygga.personnummer import canonical
from brygga.store import Store

if TYPE_CHECKING:
    from brygga.console.app import Airflow


class ActionError(Exception):
    """An action could not be done; its message goes back to the page."""


def register(app: Any, the_store: Callable[[], Store], af: Airflow, allowed: Callable[..., Principal],
             done: Callable[..., RedirectResponse], once: Callable[[str], threading.Lock],
             peer: Callable[[str], PeerConfig], tokens: Tokens) -> None:
    from adapters.http import PeerError
    from brygga.flows import admissions
    from brygga.flows import checkpoints as cp_flow
    from brygga.flows.aterbud import cases as case_flow

    expected = (KeyError, ValueError, LookupError, PeerError, case_flow.CaseError, ActionError)

    def act(request: Request, back: str, fn: Callable[[], str]) -> RedirectResponse:
        try:
            return done(request, back, True, fn())
        except expected as e:
            text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            return done(request, back, False, f"Det gick inte: {text}")

    @app.post("/unhandled-admissions/{admission_id}/omprova")
    def omprova(request: Request, admission_id: str, csrf: str = Form(""), choice: str = Form("")):
        me = allowed(request, "admissions", csrf)
        back = f"/unhandled-admissions/{admission_id}"

        def run() -> str:
            from adapters.folkbokforing import FolkbokforingAdapter
            from adapters.ladok import LadokAdapter

            package = choice[len("package:"):] if choice.startswith("package:") else None
            detail = queries.admission_detail(the_store(), admission_id)
            if package and detail and package not in {c["package_uid"] for c in detail["entry"]["candidates"]}:
                raise ActionError("kurspaketeringen är inte en av antagningens kandidater")
            with once(f"admission:{admission_id}"):
                r = admissions.retry(the_store(), LadokAdapter(peer("ladok")), FolkbokforingAdapter(peer("folkbokforing")),
                                     admission_id, actor=me.name, package_uid=package,
                                     fristaende=choice == "fristaende")
            if r["outcome"] in ("placed", "handled"):
                return "Antagningen är placerad i Ladok" + (" (redan gjort)" if r.get("already") else "") + "."
            raise ActionError(f"Ladok kunde fortfarande inte placera antagningen: {r.get('reason')}")
        return act(request, back, run)

    @app.post("/unhandled-admissions/{admission_id}/handled")
    def handled(request: Request, admission_id: str, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "admissions", csrf)

        def run() -> str:
            if not note.strip():
                raise ActionError("skriv en anteckning om vad som gjordes i Ladok")
            with once(f"admission:{admission_id}"):
                r = admissions.mark_handled(the_store(), admission_id, actor=me.name, note=note.strip())
            return "Markerad som hanterad" + (" (redan gjort)." if r.get("already") else ".")
        return act(request, f"/unhandled-admissions/{admission_id}", run)

    @app.post("/unhandled-admissions/bulk-omprova")
    def bulk(request: Request, csrf: str = Form(""), nonce: str = Form(""), round: str = Form(""),
             hinder: str = Form(""), status: str = Form("open"), instance: str = Form(""), programme: str = Form(""),
             older_than_days: str = Form("")):
        me = allowed(request, "admissions", csrf)
        f = {"round": round or None, "hinder": hinder or None, "status": status or "open", "instance": instance or None,
             "programme": programme or None, "older_than_days": int_or_none(older_than_days)}
        back = "/unhandled-admissions"

        def run() -> str:
            if af.trigger is None:
                raise ActionError("Airflow kan inte starta körningar härifrån")
            if f["status"] != "open":
                raise ActionError("bara öppna antagningar kan omprövas")
            ids, total = queries.queue_ids(the_store(), **f)
            if not ids:
                raise ActionError("inga antagningar matchar urvalet")
            run_id = f"console__omprova__{form_nonce(nonce)}"
            state = af.trigger("brygga_admission_review", run_id, {"admission_ids": ids, "action": "ompröva",
                                                                   "package_uid": "", "note": "massomprövning"}, me.name)
            if state == "created":
                _audit(the_store(), me.name, "console.bulk_retry", "dag_run", run_id, count=len(ids), filters=f)
            more = f" (de {len(ids)} äldsta av {total})" if total > len(ids) else ""
            return (f"Omprövning av {len(ids)} antagningar{more} startad som körning {run_id} av "
                    f"brygga_admission_review" if state == "created" else f"Körningen {run_id} är redan startad")
        return act(request, back, run)

    @app.post("/aterbud-cases/{case_id}/apply")
    def apply(request: Request, case_id: int, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "cases", csrf)

        def run() -> str:
            from adapters.ladok import LadokAdapter

            with once(f"case:{case_id}"):
                r = case_flow.apply_case(the_store(), LadokAdapter(peer("ladok")), case_id, actor=me.name,
                                         note=note.strip())
            if r.get("result") == "already closed":
                return "Ärendet var redan avslutat."
            if r.get("status") != "closed":
                return f"Ladok: {r.get('result')}"
            return "Föreslagen åtgärd utförd i Ladok och ärendet avslutat."
        return act(request, f"/aterbud-cases/{case_id}", run)

    @app.post("/aterbud-cases/{case_id}/close")
    def close(request: Request, case_id: int, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "cases", csrf)

        def run() -> str:
            if not note.strip():
                raise ActionError("skriv en anteckning om hur ärendet hanterades")
            case_flow.close_case(the_store(), case_id, actor=me.name, note=note.strip())
            return "Ärendet är avslutat."
        return act(request, f"/aterbud-cases/{case_id}", run)

    @app.post("/quarantine/{quarantine_id}/retry")
    def q_retry(request: Request, quarantine_id: int, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "quarantine", csrf)

        def run() -> str:
            r = cp_flow.retry(the_store(), quarantine_id, actor=me.name, note=note.strip())
            return "Redan hanterad." if r.get("already") else "Meddelandet skickas igen vid flödets nästa körning."
        return act(request, "/quarantine", run)

    @app.post("/quarantine/{quarantine_id}/dismiss")
    def q_dismiss(request: Request, quarantine_id: int, csrf: str = Form(""), note: str = Form("")):
        me = allowed(request, "quarantine", csrf)

        def run() -> str:
            if not note.strip():
                raise ActionError("skriv en anteckning om varför raden avfärdas")
            r = cp_flow.release(the_store(), quarantine_id, actor=me.name, note=note.strip())
            return "Redan avfärdad." if r.get("already") else "Raden är avfärdad."
        return act(request, "/quarantine", run)

    @app.post("/publications/{publication_id}/publish")
    def publish(request: Request, publication_id: int, csrf: str = Form("")):
        me = allowed(request, "offers", csrf)
        back = f"/publications/{publication_id}"

        def run() -> str:
            if af.trigger is None:
                raise ActionError("Airflow kan inte starta körningar härifrån")
            from brygga.flows.offers import publish_conf

            conf = publish_conf(the_store(), publication_id)
            run_id = f"console__publicera__{publication_id}"
            state = af.trigger("brygga_offer_export", run_id, conf, me.name)
            if state == "created":
                _audit(the_store(), me.name, "console.publish", "publication", str(publication_id), run_id=run_id)
                return f"Publiceringen av planen är startad som körning {run_id} av brygga_offer_export."
            return f"Planen är redan publicerad ({run_id})."
        return act(request, back, run)

    @app.post("/audit")
    def audit_person(request: Request, csrf: str = Form(""), personnummer: str = Form("")):

        me: Principal = request.state.principal
        tokens.check_csrf(me, csrf)
        try:
            pnr = canonical(personnummer.strip())
        except ValueError:
            return done(request, "/audit", False, "Det är inte ett giltigt personnummer.")
        return RedirectResponse(f"{root(request)}/audit?person={tokens.person(pnr)}", status_code=303)


def _audit(store: Store, actor: str, action: str, object_type: str, object_id: str, **detail: Any) -> None:
    from brygga.store import ops

    with store.transaction() as s:
        ops.audit(s, actor, action, object_type, object_id, **detail)
