"""The flows' pure decisions on plain data: no peer, no store, no Airflow (each well under a second).

The simulator-over-HTTP tests in ``tests/flows`` hold the same rules end to end; these pin the
decision tables themselves, so a change to one shows here first and precisely."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter

import pytest

from brygga import dagkit
from brygga.flows.kit import outbox
from brygga.flows.admissions import hinder
from brygga.flows.aterbud import rules as aterbud_rules
from brygga.flows.kit.feed import Batch, page_entries
from brygga.flows.merits import rules as merit_rules
from brygga.flows.merits.grades import GradeBook
from brygga.flows.offers import plan as offer_plan
from brygga.records import FeedPage, Grade, GradeScale, LadokEvent, Merit, NyaAterbud, Offer, Utbildningstillfalle
from brygga.states import AdmissionState, CaseAction, CaseCause, Hinder, InboxStatus
from mappings.base import RecordError

# ------------------------------------------------------------------------------------------ återbud

START = dt.date(2027, 8, 30)


@pytest.mark.parametrize(("cause", "day", "action"), [
    (CaseCause.REGISTERED, 0, CaseAction.EARLY_AVBROTT),
    (CaseCause.REGISTERED, 20, CaseAction.EARLY_AVBROTT),  # Ladok's boundary: day 20 is early ...
    (CaseCause.REGISTERED, 21, CaseAction.AVBROTT),  # ... day 21 is an ordinary avbrott
    (CaseCause.REGISTERED, -5, CaseAction.EARLY_AVBROTT),  # reported before the study start
    (CaseCause.ALREADY_ATERBUD, 3, CaseAction.NONE),
    (CaseCause.AVBROTT_EXISTS, 3, CaseAction.NONE),
    (CaseCause.NOT_ACCEPTED, 3, CaseAction.ATERBUD),
    (CaseCause.PLACED_MEANWHILE, 3, CaseAction.ATERBUD),
])
def test_the_three_week_rule_and_the_other_causes(cause, day, action):
    assert aterbud_rules.suggested_action(cause, START + dt.timedelta(days=day), START) == action
    assert aterbud_rules.suggested_action(cause, (START + dt.timedelta(days=day)).isoformat(), START.isoformat()) == action


def test_a_registered_case_without_dates_is_an_ordinary_avbrott():
    assert aterbud_rules.suggested_action(CaseCause.REGISTERED, None, START) == CaseAction.AVBROTT
    assert aterbud_rules.suggested_action(CaseCause.REGISTERED, "not a date", START) == CaseAction.AVBROTT


def _aterbud(origin: str = "applicant") -> NyaAterbud:
    return NyaAterbud("ATB-1", 7, "ADM-1", "199001011239", "offer-uid", "2027-08-02", origin)


@pytest.mark.parametrize(("state", "action", "status"), [
    (AdmissionState.PENDING, "declined", InboxStatus.PROCESSED),
    (AdmissionState.UNHANDLED, "declined", InboxStatus.PROCESSED),
    (AdmissionState.INVALID, "declined", InboxStatus.PROCESSED),
    (AdmissionState.DECLINED, "already_declined", InboxStatus.SKIPPED),
])
def test_an_admission_not_in_ladok_is_declined_there_and_then(state, action, status):
    o = aterbud_rules.triage(_aterbud(), {"state": state})
    assert (o.action, o.status, o.aterbud_id, o.admission_id, o.aterbud_date) == (
        action, status, "ATB-1", "ADM-1", "2027-08-02")


@pytest.mark.parametrize("row", [{"state": AdmissionState.PLACED}, {"state": AdmissionState.HANDLED}, None])
def test_a_placed_handled_or_unknown_admission_needs_ladok(row):
    assert aterbud_rules.triage(_aterbud(), row) is None


def test_ladoks_own_aterbud_is_never_applied_back_and_a_broken_one_is_quarantined():
    echo = aterbud_rules.triage(_aterbud(origin="ladok"), {"state": AdmissionState.PLACED})
    assert (echo.action, echo.status) == ("echo", InboxStatus.SKIPPED)
    bad = aterbud_rules.triage(RecordError("ATB-9", "Date", "not a date"), None)
    assert (bad.action, bad.status, bad.aterbud_id) == ("quarantined", InboxStatus.QUARANTINED, "ATB-9")
    assert "Date" in bad.reason


def test_which_ladok_hinder_makes_which_case():
    assert aterbud_rules.CASE_OF_HINDER == {
        "studiedeltagande.hinder.aterbud.finns": CaseCause.ALREADY_ATERBUD,
        "studiedeltagande.hinder.registrerad": CaseCause.REGISTERED,
        "studiedeltagande.hinder.avbrott.finns": CaseCause.AVBROTT_EXISTS,
    }


def _event(fields: dict, etype: str = "AterbudEvent", **kw) -> LadokEvent:
    return LadokEvent(kw.get("entry_id", "urn:e:1"), kw.get("huid", "H1"), etype, "studiedeltagande",
                      kw.get("updated", "2027-08-03T10:00:00Z"), kw.get("student", "S1"), fields)


@pytest.mark.parametrize(("fields", "who"), [
    ({"ExterntSystem": "NyA", "AutomatisktAterbud": "false"}, "system:NyA"),
    ({"AutomatisktAterbud": "true", "EventContext": {"AnvandareUID": "U9", "Anvandarnamn": "x"}}, "system:ladok"),
    # the student acting in the student web: the acting user is the student
    ({"AutomatisktAterbud": "false", "EventContext": {"AnvandareUID": "S1", "Anvandarnamn": "anna@uni.se"}},
     "student"),
    ({"EventContext": {"AnvandareUID": "S1", "Anvandarnamn": "anna@uni.se", "StudentUID": "S1"}}, "student"),
    # staff: another user, whatever their user name looks like
    ({"EventContext": {"AnvandareUID": "U7", "Anvandarnamn": "19900101-1239@student.ladok.se"}}, "staff"),
    ({"EventContext": {"Anvandarnamn": "handlaggare@uni.se"}}, "staff"),
    ({"ExterntSystem": "  "}, "staff"),
    ({}, "staff"),
])
def test_who_entered_an_aterbud_in_ladok(fields, who):
    assert aterbud_rules.entered_by(_event(fields)) == who


# ------------------------------------------------------------------------------------------ admissions

def test_ladok_hinder_keys_map_to_the_queue_and_anything_else_is_ovrigt():
    assert hinder.of_ladok("studiedeltagande.hinder.kurspaketering.saknas") == Hinder.KUNDE_INTE_PLACERAS_I_PLAN
    assert hinder.of_ladok("studiedeltagande.hinder.redan.paborjat") == Hinder.REDAN_PABORJAT
    assert hinder.of_ladok("studiedeltagande.hinder.något.nytt") == Hinder.OVRIGT
    assert hinder.reason(Hinder.REDAN_PABORJAT) == "Studenten har redan påbörjat utbildningen"
    assert hinder.reason(Hinder.OVRIGT, "HTTP 500") == "Övrigt hinder: HTTP 500"
    assert set(hinder.ADVICE) <= set(hinder.HINDER) and set(Hinder) == set(hinder.HINDER)


# ------------------------------------------------------------------------------------------ merits

class FakeScales:
    """Ladok's grunddata betygsskala as the public record shows it: AF (131657) with 131691 E and
    131697 F, PF (131656) with 131658 P (KTH's fixtures against the real Ladok), and a U/G/VG scale."""

    def __init__(self):
        self.reads = 0

    def grade_scales(self):
        self.reads += 1
        af = GradeScale("131657", "AF", (Grade("131661", "A", True, 1), Grade("131691", "E", True, 5),
                                         Grade("131696", "FX", False, 6), Grade("131697", "F", False, 7)))
        pf = GradeScale("131656", "PF", (Grade("131658", "P", True, 1), Grade("131663", "F", False, 2)))
        uv = GradeScale("101312", "UV", (Grade("101313", "VG", True, 1), Grade("101315", "U", False, 3)))
        return [af, pf, uv]


class FakeLookups:
    """What ``to_merit`` asks Ladok for, from plain data; grades through a real ``GradeBook`` over
    ``FakeScales``."""

    def __init__(self, tillfallen=None, plans=None):
        self.tillfallen, self.plans = tillfallen or {}, plans or {}
        self.scales = FakeScales()
        self.grades = GradeBook(self.scales)

    def tillfalle(self, uid):
        return self.tillfallen.get(uid)

    def instans(self, student_uid, instans_uid):
        return self.plans.get((student_uid, instans_uid))

    def grade(self, scale_id, grade_id):
        return self.grades.code(scale_id, grade_id)

    def grade_unknown(self, scale_id, grade_id):
        return self.grades.why_unknown(scale_id, grade_id)


def _instance(uid="T1", code="TDA357", credits="7.5") -> Utbildningstillfalle:
    return Utbildningstillfalle(uid, code, "12345", "Databaser", None, credits, "2027-08-30", "2028-01-14", 100,
                                "Umeå", False, True, False)


def test_a_registration_takes_its_credits_from_the_instance_and_its_date_from_the_period():
    e = _event({"KurstillfalleUID": "T1", "RegistreringUID": "R1", "StudieperiodStart": "2027-08-30"},
               "RegistreringEvent")
    m = merit_rules.to_merit(e, "199001011239", FakeLookups({"T1": _instance()}))
    assert (m.type, m.utbildningskod, m.tillfalleskod, m.credits, m.date, m.source_reference) == (
        "registrering", "TDA357", "12345", "7.5", "2027-08-30", "ladok:registrering:R1")
    # the merit is the Ladok object, whichever path found it: the same id from the feed and the snapshot
    assert m.merit_id == "ladok:registrering:R1"
    assert merit_rules.idempotency_key(m.merit_id, 2) == "nya:merit:ladok:registrering:R1:2"


@pytest.mark.parametrize(("scale_id", "grade_id", "grade"), [
    ("131657", "131697", "F"), ("131657", "131691", "E"), ("131656", "131658", "P"), ("101312", "101313", "VG"),
    (None, "131696", "FX"),  # no BetygsskalaID: the grade id alone
])
def test_a_result_carries_its_grade_as_ladoks_scales_list_it(scale_id, grade_id, grade):
    e = _event({"KurstillfalleUID": "T1", "Resultat": {"BetygsgradID": grade_id, "BetygsskalaID": scale_id,
                                                       "OmfattningsPoang": "3", "Examinationsdatum": "2027-10-20",
                                                       "ResultatUID": "X"}},
               "ResultatPaModulAttesteratEvent")
    lookups = FakeLookups({"T1": _instance()})
    m = merit_rules.to_merit(e, "199001011239", lookups)
    assert (m.type, m.grade, m.credits, m.date) == ("resultat", grade, "3.0", "2027-10-20")
    assert lookups.scales.reads == 1


def test_grade_scales_are_read_once_per_run_however_many_grades_are_unknown():
    lookups = FakeLookups({"T1": _instance()})
    for grade_id in ("999", "998", "131697"):
        e = _event({"KurstillfalleUID": "T1", "Resultat": {"BetygsgradID": grade_id, "BetygsskalaID": "131657",
                                                           "Examinationsdatum": "2027-10-20", "ResultatUID": "X"}},
                   "ResultatPaModulAttesteratEvent")
        merit_rules.to_merit(e, "199001011239", lookups)
    assert lookups.scales.reads == 1


@pytest.mark.parametrize(("event", "lookups", "reason"), [
    (_event({"KurstillfalleUID": "T1", "Resultat": {"BetygsgradID": "999", "ResultatUID": "X"}},
            "ResultatPaModulAttesteratEvent"),
     FakeLookups({"T1": _instance()}), "BetygsgradID '999' (BetygsskalaID None) is not in Ladok's grade scales"),
    (_event({"KurstillfalleUID": "T1", "Resultat": {"BetygsgradID": "131697", "BetygsskalaID": "131656",
                                                    "ResultatUID": "X"}},
            "ResultatPaModulAttesteratEvent"), FakeLookups({"T1": _instance()}),
     "BetygsgradID 131697 is a grade of scale 131657 in Ladok's grade scales, not of BetygsskalaID 131656"),
    (_event({"KurstillfalleUID": "T1", "Resultat": {"BetygsskalaID": "131657", "ResultatUID": "X"}},
            "ResultatPaModulAttesteratEvent"), FakeLookups({"T1": _instance()}), "the result has no BetygsgradID"),
    (_event({"KurstillfalleUID": "T1", "Resultat": {"BetygsgradID": "131697"}}, "ResultatPaHelKursAttesteratEvent"),
     FakeLookups({"T1": _instance()}), "names no Resultat/ResultatUID: the merit cannot be identified"),
    (_event({"KurstillfalleUID": "T9", "RegistreringUID": "R"}, "RegistreringEvent"), FakeLookups(),
     "not found in Ladok"),
    (_event({"RegistreringUID": "R"}, "RegistreringEvent"), FakeLookups(), "names no utbildningstillfälle"),
    (_event({"KurstillfalleUID": "T1", "RegistreringUID": "R"}, "RegistreringEvent"),
     FakeLookups({"T1": _instance(code=None)}), "has no utbildningskod"),
    (_event({"UtfardatBevisUID": "B1"}, "UtfardatBevisEvent"), FakeLookups(), "no HuvudsakligKurspaketeringsinstansUID"),
])
def test_what_cannot_be_a_merit_says_why(event, lookups, reason):
    result = merit_rules.to_merit(event, "199001011239", lookups)
    assert isinstance(result, str) and reason in result


def test_an_examen_names_its_programme_by_the_student_s_study_plan():
    e = _event({"UtfardatBevisUID": "B1", "HuvudsakligKurspaketeringsinstansUID": "I1",
                "DatumForUtfardatBevis": "2028-06-10"}, "UtfardatBevisEvent")
    plans = {("S1", "I1"): {"utbildningskod": "TKDAT", "tillfalleskod": "P1", "instans_uid": "I1"}}
    m = merit_rules.to_merit(e, "199001011239", FakeLookups(plans=plans))
    assert (m.type, m.utbildningskod, m.tillfalleskod, m.date) == ("examen", "TKDAT", "P1", "2028-06-10")


# ------------------------------------------------------------------------------------------ offers

def _offer(oid: str, name: str = "Databaser") -> Offer:
    return Offer(oid, "TDA357", f"T{oid}", name, "7.5", "2027-08-30", "2028-01-14", 100, 30)


def test_the_plan_of_a_publication():
    new, changed, same, bad = _offer("o-new"), _offer("o-changed", "Databaser II"), _offer("o-same"), _offer("o-bad")
    published = {"o-changed": (offer_plan.content_hash(_offer("o-changed")), "active"),
                 "o-same": (offer_plan.content_hash(same), "active"),
                 "o-cancelled": ("h1", "active"), "o-gone": ("h2", "active"), "o-old": ("h3", "withdrawn")}
    rows = offer_plan.plan(7, [new, changed, same, bad], {"o-bad": "field Credits: invalid"}, ["o-cancelled"],
                           published, whole_round=True)
    by = {r["offer_id"]: (r["action"], r["status"], r["payload"] is not None) for r in rows}
    assert by == {"o-new": ("new", "planned", True), "o-changed": ("changed", "planned", True),
                  "o-same": ("unchanged", "done", False), "o-bad": ("invalid", "invalid", True),
                  "o-cancelled": ("withdrawn", "planned", False), "o-gone": ("withdrawn", "planned", False)}
    only_codes = offer_plan.plan(7, [new], {}, ["o-cancelled"], published, whole_round=False)
    assert {r["offer_id"]: r["action"] for r in only_codes} == {"o-new": "new", "o-cancelled": "withdrawn"}


def test_offer_keys_and_ids_are_stable():
    a, b = offer_plan.idempotency_key("HT2027", "ordinary", "o1", "h"), offer_plan.idempotency_key(
        "HT2027", "ordinary", "o1", "h", withdraw=True)
    assert (a, b) == ("nya:offer:HT2027:ordinary:o1:h", "nya:withdraw:HT2027:ordinary:o1:h")
    uid = "3d2f2c1e-6f43-4bb0-9f1a-0c3c2c7d9a10"
    assert offer_plan.programme_offer_id(uid, "c1") == offer_plan.programme_offer_id(uid, "c1") != \
        offer_plan.programme_offer_id(uid, "c2")
    assert offer_plan.offerable(_instance())
    assert not offer_plan.offerable(dataclasses.replace(_instance(), installt=True))
    assert not offer_plan.offerable(dataclasses.replace(_instance(), utannonserat=False))


def test_request_ids_follow_the_rows_and_keep_their_format():
    keys = ["nya:merit:H1", "nya:merit:H2"]
    assert outbox.request_id("merits", keys) == outbox.request_id("merits", iter(keys)) != outbox.request_id(
        "merits", keys[:1])
    assert outbox.request_id("merits", keys).startswith("brygga-merits-")
    offers = outbox.request_id("", keys)  # the offer export's RequestIds have no prefix
    assert offers.startswith("brygga-") and not offers.startswith("brygga--") and len(offers) == len("brygga-") + 40


# ------------------------------------------------------------------------------------------ the feed

def _page(entries) -> FeedPage:
    from mappings.ladok.events import AtomFeedPage

    page = AtomFeedPage(None, None, None, None, [], [], Counter())
    page.entries = entries
    for _, item in entries:
        if isinstance(item, LadokEvent):
            page.events.append(item)
        elif isinstance(item, RecordError):
            page.errors.append(item)
        else:
            page.skipped[item] += 1
    return page


def test_a_page_is_read_after_its_checkpoint_entry_and_the_checkpoint_stands_on_its_last_entry():
    e1, e2 = _event({}, entry_id="u:1", huid="H1"), _event({}, entry_id="u:2", huid="H2")
    page = _page([("u:1", e1), ("u:2", e2), ("u:3", "StudiegangBytt2030Event")])
    assert page_entries(page, None) == (page.entries, "u:3")
    assert page_entries(page, "u:1") == ([("u:2", e2), ("u:3", "StudiegangBytt2030Event")], "u:3")
    assert page_entries(page, "u:3") == ([], "u:3")


def test_a_batch_keeps_what_its_consumer_wants_and_counts_every_entry():
    e1, e2 = _event({}, entry_id="u:1", huid="H1"), _event({}, "RegistreringEvent", entry_id="u:2", huid="H2")
    bad = RecordError("H3", "StudentUID", "required field missing", "AterbudEvent")
    page = _page([("u:1", e1), ("u:2", e2), ("u:3", bad), ("u:4", "X")])
    everything, aterbud_only = Batch(), Batch()
    everything.add(page, page.entries, None)
    aterbud_only.add(page, page.entries[1:], lambda item: getattr(item, "event_type", None) == "AterbudEvent"
                     or getattr(item, "kind", None) == "AterbudEvent")
    assert (len(everything.events), len(everything.errors), everything.skipped, everything.entries) == (
        2, 1, Counter({"X": 1}), 4)
    assert (aterbud_only.events, aterbud_only.errors, aterbud_only.entries) == ([], [bad], 3)


# ------------------------------------------------------------------------------------------ dagkit

def test_one_rule_for_who_acts_in_a_run_and_mapped_counts_add_up():
    class Run:
        def __init__(self, user):
            self.triggering_user_name, self.dag_id = user, "brygga_aterbud_cases"

    assert dagkit.actor({"dag_run": Run("anna.operator")}) == "anna.operator"
    assert dagkit.actor({"dag_run": Run(None)}) == "airflow:brygga_aterbud_cases"
    assert dagkit.total([{"placed": 2, "retry": 0, "ok": True}, {"placed": 3, "hinder:ovrigt": 1}]) == {
        "placed": 5, "retry": 0, "hinder:ovrigt": 1}


# ------------------------------------------------------------------------------------ identity

def test_a_merit_is_the_ladok_object_and_a_retraction_names_the_same_one():
    """The feed's event and its retraction (and the snapshot's record) name one merit."""
    result = _event({"Resultat": {"ResultatUID": "R1"}}, "ResultatPaHelKursAttesteratEvent")
    cancelled = _event({"ResultatUID": "R1"}, "AttesteratResultatMakuleratEvent")
    assert merit_rules.merit_ref(result) == merit_rules.retraction_ref(cancelled) == "ladok:resultat:R1"
    avbrott = _event({"UtbildningstillfalleUID": "T1"}, "AvbrottEvent")
    removed = _event({"UtbildningstillfalleUID": "T1"}, "AvbrottBorttagetEvent")
    assert merit_rules.merit_ref(avbrott) == merit_rules.retraction_ref(removed) == "ladok:avbrott:S1:T1"
    registration = _event({"RegistreringUID": "G1"}, "RegistreringEvent")
    withdrawn = _event({"RegistreringUID": "G1"}, "AterkalladregistreringEvent")  # an early avbrott
    assert merit_rules.merit_ref(registration) == merit_rules.retraction_ref(withdrawn) == "ladok:registrering:G1"
    assert merit_rules.retraction_ref(_event({}, "UppehallBorttagetEvent")) is None
    a = Merit("ladok:resultat:R1", "199001011239", "resultat", "TDA357", "2027-10-20", grade="A")
    assert merit_rules.content_hash(a) == merit_rules.content_hash(dataclasses.replace(a, source_reference="x"))
    assert merit_rules.content_hash(a) != merit_rules.content_hash(dataclasses.replace(a, grade="B"))


def test_a_number_change_is_read_from_lokal_student_events_and_a_bad_one_set_aside():
    from brygga.flows.kit import identity

    swedish = "198112189876"
    events = [
        _event({"Personnummer": swedish, "TidigarePersonnummer": "19880527-T281"}, "LokalStudentEvent", huid="H1"),
        _event({"Personnummer": swedish}, "LokalStudentEvent", huid="H2"),  # a new student: no change
        _event({"Personnummer": swedish, "TidigarePersonnummer": swedish}, "LokalStudentEvent", huid="H3"),
        _event({"Personnummer": "198112189877", "TidigarePersonnummer": "19880527T281"}, "LokalStudentEvent",
               huid="H4"),  # the new number fails its check digit
        _event({"TidigarePersonnummer": "19880527T281"}, "RegistreringEvent", huid="H5"),
    ]
    found, bad = identity.renumberings(events)
    assert found == [identity.Renumbering("H1", "S1", "19880527T281", swedish)]
    assert list(bad) == ["H4"] and "Luhn" in bad["H4"] and "9877" not in bad["H4"]
