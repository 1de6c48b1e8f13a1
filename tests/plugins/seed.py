"""A store with publications, unhandled admissions and återbud cases, for the operations views."""

from __future__ import annotations

import datetime as dt

from brygga.store import ops
from brygga.store.models import (
    AterbudCase,
    NyaAdmission,
    OutboxMessage,
    Publication,
    PublicationItem,
    UnhandledAdmission,
)

PNR_A = "199001011239"
PNR_B = "20010203-4567"  # as people write it; stored as 12 digits

UNHANDLED = [  # (round, hinder, status, personnummer)
    ("HT2027", "studieplan.saknar.paket", "open", PNR_A),
    ("HT2027", "studieplan.saknar.paket", "open", None),
    ("HT2027", "tillfalle.installt", "open", PNR_B),
    ("HT2027", "tillfalle.installt", "resolved", None),
    ("VT2028", "studieplan.saknar.paket", "open", None),
]
ATERBUD = [  # (round, status, cause)
    ("HT2027", "open", "registered"),
    ("HT2027", "open", "already_aterbud"),
    ("HT2027", "closed", "registered"),
    ("VT2028", "open", "registered"),
]


def seed(store) -> dict[str, int]:
    t0 = dt.datetime(2027, 4, 1, 12, 0, tzinfo=dt.timezone.utc)
    with store.transaction() as s:
        real = Publication(round="HT2027", kind="ordinary", selection={"codes": [], "places": 30}, dry_run=False,
                           triggered_by="anna.operator", run_id="manual__2027-04-01", status="partial",
                           counts={"new": 2, "withdrawn": 1, "invalid": 1, "status_sent": 2}, started_at=t0,
                           finished_at=t0 + dt.timedelta(minutes=1))
        dry = Publication(round="HT2027", kind="programme-internal", selection={"codes": ["TKDAT"], "places": 30},
                          dry_run=True, triggered_by="bo.operator", status="done", counts={"new": 1},
                          started_at=t0 + dt.timedelta(hours=1))
        other = Publication(round="VT2028", kind="ordinary", selection={"codes": [], "places": 30}, dry_run=False,
                            triggered_by="anna.operator", status="done", counts={}, started_at=t0 + dt.timedelta(hours=2))
        s.add_all([real, dry, other])
        s.flush()
        offer = {"offer_id": "11111111-1111-4111-8111-111111111111", "utbildningskod": "TDA357",
                 "tillfalleskod": "27611", "name_sv": "Databaser", "credits": "7.5", "start": "2027-08-30",
                 "end": "2027-10-29", "studietakt": 100, "places": 30, "name_en": None, "studieort": "Umeå",
                 "programme_code": None, "package_id": None}
        s.add_all([
            PublicationItem(publication_id=real.id, offer_id=offer["offer_id"], tillfalleskod="27611", action="new",
                            content_hash="h1", status="sent", message="created", payload=offer),
            PublicationItem(publication_id=real.id, offer_id="22222222-2222-4222-8222-222222222222",
                            tillfalleskod="27612", action="new", content_hash="h2", status="rejected",
                            message="rejected: TDA358/27612 is already published as offer x",
                            payload={**offer, "offer_id": "22222222-2222-4222-8222-222222222222"}),
            PublicationItem(publication_id=real.id, offer_id="33333333-3333-4333-8333-333333333333",
                            action="withdrawn", content_hash="h3", status="sent", message="withdrawn"),
            PublicationItem(publication_id=real.id, offer_id="44444444-4444-4444-8444-444444444444",
                            tillfalleskod="27614", action="invalid", content_hash="h4", status="invalid",
                            message=f"Studietakt: value 0 out of range (student {PNR_A})"),
            PublicationItem(publication_id=real.id, offer_id="55555555-5555-4555-8555-555555555555",
                            tillfalleskod="27615", action="unchanged", content_hash="h5", status="done"),
            PublicationItem(publication_id=dry.id, offer_id="66666666-6666-4666-8666-666666666666",
                            tillfalleskod="30001", action="new", content_hash="h6", status="planned"),
        ])
        ops.outbox_enqueue(s, [
            {"destination": "nya", "kind": "offer", "correlation": "offers:HT2027:ordinary",
             "idempotency_key": f"nya:offer:HT2027:ordinary:{offer['offer_id']}:h1",
             "payload": {"offer_id": offer["offer_id"], "publication_id": real.id, "hash": "h1"}},
            {"destination": "nya", "kind": "offer", "correlation": "offers:HT2027:ordinary",
             "idempotency_key": "nya:offer:HT2027:ordinary:22222222-2222-4222-8222-222222222222:h2",
             "payload": {"offer_id": "22222222-2222-4222-8222-222222222222", "publication_id": real.id, "hash": "h2"}},
        ])
        s.flush()
        for m in s.query(OutboxMessage):
            if m.idempotency_key.endswith(":h2"):
                m.status, m.attempts, m.last_error = "dead", 1, "NyA rejected: TDA358/27612 is already published"
            else:
                m.status, m.attempts = "sent", 1
        ops.audit(s, "anna.operator", "publication.start", "publication", str(real.id), round="HT2027")
        ops.audit(s, "anna.operator", "publication.finish", "publication", str(real.id), status="partial")

        for i, (rnd, hinder, status, pnr) in enumerate(UNHANDLED):
            s.add(UnhandledAdmission(
                nya_admission_id=f"ADM-{i}", round=rnd, personnummer=pnr and pnr.replace("-", ""), tillfalleskod=f"2761{i}", hinder=hinder,
                reason=f"Kan inte placeras: {hinder}" + (f" för {pnr}" if pnr else ""),
                candidates=[], admission={"personnummer": pnr and pnr.replace("-", "")}, status=status,
                created_at=t0 + dt.timedelta(minutes=i)))
            s.add(NyaAdmission(admission_id=f"ADM-{i}", round=rnd, sequence=i, personnummer=pnr and pnr.replace("-", ""),
                               tillfalleskod=f"2761{i}", state="unhandled" if status == "open" else "placed",
                               created_at=t0 + dt.timedelta(minutes=i)))
        for i, (rnd, status, cause) in enumerate(ATERBUD):
            s.add(AterbudCase(
                nya_aterbud_id=f"ATB-{i}", round=rnd, nya_admission_id=f"ADM-{i}",
                personnummer=PNR_B.replace("-", "") if i == 0 else PNR_A, education="TDA357 Databaser", cause=cause,
                suggested_action="avbrott" if cause == "registered" else "none", status=status,
                note=f"student {PNR_B} ringde" if i == 0 else None, created_at=t0 + dt.timedelta(minutes=i)))
    return {"real": real.id, "dry": dry.id, "other": other.id}
