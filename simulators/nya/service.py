"""The NyA operations: a validated request element in, a serialized response element out.

``dispatch`` checks the operation, validates the request against ``schemas/nya/nya-1.xsd``,
replays stored replies for a known RequestId and turns ``NyaError`` into soap:Client faults.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Callable
from decimal import Decimal

from lxml import etree

from brygga import personnummer as pnr_mod
from brygga import xmlsafe
from brygga.paths import SCHEMAS
from simulators.nya.soap import NS, SoapFault, element, opt, q, sub, text
from simulators.nya.state import (
    Admission,
    Merit,
    NyaError,
    NyaState,
    Offer,
    RoundState,
    canonical_pnr,
    next_sequence,
    since,
)

SCHEMA_PATH = SCHEMAS / "nya" / "nya-1.xsd"
WSDL_PATH = SCHEMAS / "nya" / "nya-1.wsdl"
SOAP_ACTION = "urn:brygga:nya:1#{}"


def _t(el: etree._Element, tag: str) -> str | None:
    return el.findtext(q(tag))


def _date(v: str | None) -> dt.date | None:
    return None if v is None else dt.date.fromisoformat(v[:10])


def _int(v: str | None, default: int = 0) -> int:
    return default if v is None else int(v)


def _bool(v: str | None) -> bool:
    return v in ("true", "1")


def _bytes(el: etree._Element) -> bytes:
    return etree.tostring(el, encoding="UTF-8")


# -- operations -------------------------------------------------------------------------------


def list_admission_rounds(state: NyaState, req: etree._Element) -> bytes:
    status = _t(req, "Status")
    resp = element("ListAdmissionRoundsResponse")
    with state.lock:
        for rs in state.rounds.values():
            r = rs.round
            if status and r.status != status:
                continue
            el = sub(resp, "Round", None)
            for tag, v in (("Code", r.code), ("Name", r.name), ("Status", r.status),
                           ("ApplicationOpens", r.application_opens), ("ApplicationCloses", r.application_closes),
                           ("AdmissionNotice", r.admission_notice), ("TermStart", r.term_start)):
                sub(el, tag, v)
    return _bytes(resp)


def _offer(el: etree._Element, kind: str) -> Offer:
    return Offer(
        _t(el, "OfferId"), kind, _t(el, "Utbildningskod"), _t(el, "Tillfalleskod"), _t(el, "NameSv"),
        _t(el, "NameEn"), Decimal(_t(el, "Credits")), _date(_t(el, "StudyPeriodStart")),
        _date(_t(el, "StudyPeriodEnd")), _t(el, "Studieort"), int(_t(el, "Studietakt")), int(_t(el, "Places")),
        _t(el, "ProgrammeCode"), _t(el, "PackageId"),
    )


def _results(resp: etree._Element, id_tag: str, results) -> None:
    for rid, outcome, reason in results:
        r = sub(resp, "Result", None)
        sub(r, id_tag, rid)
        sub(r, "Outcome", outcome)
        opt(r, "Reason", reason)


def publish_offer(state: NyaState, req: etree._Element) -> bytes:
    kind = _t(req, "Kind")
    offers = [_offer(el, kind) for el in req.iterfind(q("Offer"))]
    results = state.publish_offers(_t(req, "Round"), kind, offers)
    resp = element("PublishOfferResponse")
    sub(resp, "RequestId", _t(req, "RequestId"))
    sub(resp, "Round", _t(req, "Round"))
    _results(resp, "OfferId", results)
    return _bytes(resp)


def withdraw_offer(state: NyaState, req: etree._Element) -> bytes:
    ids = [el.text for el in req.iterfind(q("OfferId"))]
    results = state.withdraw_offers(_t(req, "Round"), ids, _t(req, "Reason") or "")
    resp = element("WithdrawOfferResponse")
    sub(resp, "RequestId", _t(req, "RequestId"))
    sub(resp, "Round", _t(req, "Round"))
    _results(resp, "OfferId", results)
    return _bytes(resp)


def get_offers(state: NyaState, req: etree._Element) -> bytes:
    resp = element("GetOffersResponse")
    sub(resp, "Round", _t(req, "Round"))
    for o in state.get_offers(_t(req, "Round"), _t(req, "Kind")):
        el = sub(resp, "Offer", None)
        for tag, v in (("OfferId", o.offer_id), ("Utbildningskod", o.utbildningskod),
                       ("Tillfalleskod", o.tillfalleskod), ("NameSv", o.name_sv), ("NameEn", o.name_en),
                       ("Credits", o.credits), ("StudyPeriodStart", o.start), ("StudyPeriodEnd", o.end),
                       ("Studieort", o.studieort), ("Studietakt", o.studietakt), ("Places", o.places),
                       ("ProgrammeCode", o.programme_code), ("PackageId", o.package_id), ("Kind", o.kind),
                       ("Status", o.status), ("WithdrawalReason", o.withdrawal_reason)):
            opt(el, tag, v)
    return _bytes(resp)


def submit_merits(state: NyaState, req: etree._Element) -> bytes:
    merits = []
    for i, el in enumerate(req.iterfind(q("Merit")), 1):
        credits = _t(el, "Credits")
        merits.append(Merit(
            _t(el, "MeritId"), canonical_pnr(_t(el, "Personnummer"), f"Merit[{i}]/Personnummer"), _t(el, "Type"),
            _t(el, "Utbildningskod"), _t(el, "Tillfalleskod"), _t(el, "Modul"),
            None if credits is None else Decimal(credits), _t(el, "Grade"), _date(_t(el, "Date")),
            _t(el, "SourceReference")))
    results = state.submit_merits(merits, _t(req, "RequestId"))
    resp = element("SubmitMeritsResponse")
    sub(resp, "RequestId", _t(req, "RequestId"))
    _results(resp, "MeritId", results)
    return _bytes(resp)


def get_applicant_merits(state: NyaState, req: etree._Element) -> bytes:
    pnr = canonical_pnr(_t(req, "Personnummer"), "Personnummer")
    resp = element("GetApplicantMeritsResponse")
    sub(resp, "Personnummer", pnr)
    for m in state.applicant_merits(pnr):
        el = sub(resp, "Merit", None)
        for tag, v in (("MeritId", m.merit_id), ("Personnummer", m.personnummer), ("Type", m.type),
                       ("Utbildningskod", m.utbildningskod), ("Tillfalleskod", m.tillfalleskod), ("Modul", m.modul),
                       ("Credits", m.credits), ("Grade", m.grade), ("Date", m.date),
                       ("SourceReference", m.source_reference), ("Received", m.received),
                       ("RequestId", m.request_id)):
            opt(el, tag, v)
    return _bytes(resp)


def withdraw_merits(state: NyaState, req: etree._Element) -> bytes:
    results = state.withdraw_merits([el.text or "" for el in req.iterfind(q("MeritId"))])
    resp = element("WithdrawMeritsResponse")
    sub(resp, "RequestId", _t(req, "RequestId"))
    _results(resp, "MeritId", results)
    return _bytes(resp)


def get_applicants(state: NyaState, req: etree._Element) -> bytes:
    from_seq = int(_t(req, "FromSequence") or 0)
    items, nxt = state.applicants_since(_t(req, "Round"), from_seq)
    resp = element("GetApplicantsResponse")
    sub(resp, "Round", _t(req, "Round"))
    sub(resp, "NextSequence", nxt)
    for a in items:
        el = sub(resp, "Applicant", None)
        sub(el, "Sequence", a.sequence)
        sub(el, "Personnummer", a.personnummer)
    return _bytes(resp)


def list_applicants(state: NyaState, req: etree._Element) -> bytes:
    pnrs = state.list_applicants(_t(req, "Round"))
    resp = element("ListApplicantsResponse")
    sub(resp, "Round", _t(req, "Round"))
    sub(resp, "Count", len(pnrs))
    for p in pnrs:
        sub(resp, "Personnummer", p)
    return _bytes(resp)


_ADM_OPEN = b'<Admission xmlns="' + NS.encode() + b'">'
_templates: dict[tuple[str, ...], etree._Element] = {}


def _filled(tag: str, pairs: list[tuple[str, object]]) -> etree._Element:
    """``tag`` with one child per (name, value); copies a cached empty template (much faster than
    building element by element, which matters for 100k admissions)."""
    pairs = [(k, v) for k, v in pairs if v is not None]
    key = (tag, *(k for k, _ in pairs))
    tpl = _templates.get(key)
    if tpl is None:
        tpl = _templates[key] = element(tag)
        for k, _ in pairs:
            sub(tpl, k, None)
    el = copy.deepcopy(tpl)
    for child, (_, v) in zip(el, pairs, strict=True):
        child.text = v if isinstance(v, str) else text(v)
    return el


def admission_xml(rs: RoundState, adm: Admission) -> bytes:
    """The Admission fragment, rendered once per change (cached on the admission)."""
    if adm.xml is None:
        a, o = rs.applicants[adm.personnummer], rs.offers[adm.offer_id]
        el = _filled("Admission", [
            ("AdmissionId", adm.admission_id), ("Sequence", adm.sequence), ("Round", adm.round),
            ("Personnummer", adm.personnummer), ("GivenName", a.given_name), ("FamilyName", a.family_name),
            ("OfferId", o.offer_id), ("Utbildningskod", o.utbildningskod), ("Tillfalleskod", o.tillfalleskod),
            ("ProgrammeInternal", o.kind == "programme-internal"), ("ProgrammeCode", o.programme_code),
            ("PackageId", o.package_id), ("ChoiceRank", adm.choice_rank), ("Admitted", adm.admitted),
            ("ReservePosition", adm.reserve_position), ("Accepted", adm.accepted), ("FeeLiable", adm.fee_liable),
            ("ApplicationFeePaid", adm.application_fee_paid if adm.fee_liable else None)])
        for c in adm.conditions:
            cel = sub(el, "Condition", None)
            sub(cel, "Code", c.code)
            sub(cel, "Text", c.text)
            sub(cel, "Lifted", c.lifted)
            opt(cel, "LiftedDate", c.lifted_date)
        if adm.aterbud is not None:
            ael = sub(el, "Aterbud", None)
            sub(ael, "AterbudId", adm.aterbud.aterbud_id)
            sub(ael, "Date", adm.aterbud.date)
            sub(ael, "Origin", adm.aterbud.origin)
        # The response element declares the same default namespace; drop the redundant one.
        adm.xml = b"<Admission>" + _bytes(el)[len(_ADM_OPEN):]
    return adm.xml


def get_admissions(state: NyaState, req: etree._Element) -> bytes:
    code = _t(req, "Round")
    with state.lock:
        from_seq = _int(_t(req, "FromSequence"))
        rs, adms, nxt = state.admissions_since(code, from_seq, _bool(_t(req, "OnlyAccepted")))
        parts = [admission_xml(rs, a) for a in adms]
        raw = since(rs.raw, from_seq)
        if raw:  # the fault surface's broken records, merged in sequence order
            merged = sorted([(a.sequence, p) for a, p in zip(adms, parts, strict=True)]
                            + [(r.sequence, r.xml) for r in raw], key=lambda x: x[0])
            parts = [p for _, p in merged]
            nxt = max(nxt, raw[-1].sequence + 1)
    resp = element("GetAdmissionsResponse")
    sub(resp, "Round", code)
    sub(resp, "NextSequence", nxt)
    sub(resp, "Count", len(parts))
    head = _bytes(resp)
    close = b"</GetAdmissionsResponse>"
    return head[: -len(close)] + b"".join(parts) + close


def _stream_since(state: NyaState, req: etree._Element, response: str, stream: str, tag: str,
                  fields: Callable[[object], tuple]) -> bytes:
    """A "changed since" reply: the round's ``stream`` items with Sequence >= FromSequence, and
    NextSequence (GetConditionChanges, GetAterbud)."""
    code, from_seq = _t(req, "Round"), _int(_t(req, "FromSequence"))
    with state.lock:
        items = since(getattr(state.round_state(code), stream), from_seq)
    resp = element(response)
    sub(resp, "Round", code)
    sub(resp, "NextSequence", next_sequence(items, from_seq))
    for item in items:
        el = sub(resp, tag, None)
        for name, v in fields(item):
            opt(el, name, v)
    return _bytes(resp)


def get_condition_changes(state: NyaState, req: etree._Element) -> bytes:
    return _stream_since(state, req, "GetConditionChangesResponse", "changes", "Change", lambda c: (
        ("Sequence", c.sequence), ("AdmissionId", c.admission_id), ("Personnummer", c.personnummer),
        ("OfferId", c.offer_id), ("Code", c.code), ("Text", c.text), ("Change", c.change), ("Date", c.date)))


def report_aterbud(state: NyaState, req: etree._Element) -> bytes:
    code = _t(req, "Round")
    items, seen = [], set()
    for i, el in enumerate(req.iterfind(q("Aterbud")), 1):
        pnr = _t(el, "Personnummer")
        item = dict(admission_id=_t(el, "AdmissionId"), offer_id=_t(el, "OfferId"), date=_date(_t(el, "Date")),
                    pnr=None if pnr is None else canonical_pnr(pnr, f"Aterbud[{i}]/Personnummer"),
                    source=_t(el, "Source"), source_reference=_t(el, "SourceReference"))
        key = item["admission_id"] or (item["pnr"], item["offer_id"])
        if key in seen:
            raise NyaError("duplicate-id", f"Aterbud[{i}] refers to the same admission as an earlier item",
                           f"Aterbud[{i}]")
        seen.add(key)
        items.append(item)
    resp = element("ReportAterbudResponse")
    sub(resp, "RequestId", _t(req, "RequestId"))
    with state.lock:
        state.round_state(code, open_only=True)
        for item in items:
            outcome, adm, rec, reason = state.register_aterbud(code, origin="ladok", **item)
            r = sub(resp, "Result", None)
            opt(r, "AdmissionId", adm.admission_id if adm else item["admission_id"])
            opt(r, "AterbudId", rec.aterbud_id if rec else None)
            sub(r, "Outcome", outcome)
            opt(r, "Reason", reason)
    return _bytes(resp)


def get_aterbud(state: NyaState, req: etree._Element) -> bytes:
    return _stream_since(state, req, "GetAterbudResponse", "aterbud", "Aterbud", lambda a: (
        ("AterbudId", a.aterbud_id), ("Sequence", a.sequence), ("AdmissionId", a.admission_id),
        ("Personnummer", a.personnummer), ("OfferId", a.offer_id), ("Date", a.date), ("Registered", a.registered),
        ("Origin", a.origin), ("Source", a.source), ("SourceReference", a.source_reference)))


# name -> (handler, mutating: carries a RequestId and is idempotent)
OPERATIONS: dict[str, tuple[Callable[[NyaState, etree._Element], bytes], bool]] = {
    "ListAdmissionRounds": (list_admission_rounds, False),
    "PublishOffer": (publish_offer, True),
    "WithdrawOffer": (withdraw_offer, True),
    "GetOffers": (get_offers, False),
    "SubmitMerits": (submit_merits, True),
    "GetApplicantMerits": (get_applicant_merits, False),
    "ListApplicants": (list_applicants, False),
    "GetApplicants": (get_applicants, False),
    "WithdrawMerits": (withdraw_merits, True),
    "GetAdmissions": (get_admissions, False),
    "GetConditionChanges": (get_condition_changes, False),
    "ReportAterbud": (report_aterbud, True),
    "GetAterbud": (get_aterbud, False),
}


def _schema_fault(schema: etree.XMLSchema) -> SoapFault:
    errors = list(schema.error_log)
    dup = next((e for e in errors if e.type_name.startswith("SCHEMAV_CVC_IDC") and "Duplicate" in e.message), None)
    first = dup or errors[0]
    msg = pnr_mod.mask(first.message.replace(f"{{{NS}}}", ""))
    if dup is not None:
        return SoapFault("Client", "duplicate-id", f"duplicate id in request: {msg}")
    return SoapFault("Client", "schema-invalid", f"request does not match nya-1.xsd: {msg}")


def dispatch(state: NyaState, req: etree._Element, soap_action: str | None = None) -> tuple[bytes, bool]:
    """Run one request; returns (response element bytes, replayed). Raises SoapFault."""
    qn = etree.QName(req)
    op = OPERATIONS.get(qn.localname) if qn.namespace == NS else None
    if op is None:
        raise SoapFault("Client", "unknown-operation", f"unknown operation {{{qn.namespace or ''}}}{qn.localname}; "
                        f"the service namespace is {NS}")
    action = (soap_action or "").strip().strip('"')
    if action and action != SOAP_ACTION.format(qn.localname):
        raise SoapFault("Client", "soapaction-mismatch",
                        f"SOAPAction {action!r} does not match body element {qn.localname}")
    schema = xmlsafe.load_schema(SCHEMA_PATH)
    if not schema.validate(req):
        raise _schema_fault(schema)
    handler, mutating = op
    try:
        if not mutating:
            return handler(state, req), False
        request_id = _t(req, "RequestId")
        digest = hashlib.sha256(etree.tostring(req, method="c14n")).hexdigest()
        with state.lock:
            stored = state.stored_reply(request_id, qn.localname, digest)
            if stored is not None:
                return stored, True
            reply = handler(state, req)
            state.remember(request_id, qn.localname, digest, reply)
            return reply, False
    except NyaError as e:
        raise SoapFault("Client", e.code, e.message, e.field) from None
