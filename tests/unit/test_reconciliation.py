"""The reconciliation's rules (brygga.flows.reconciliation.compare) on plain records: each drift
kind from the smallest case that makes it, and what is not drift."""

from __future__ import annotations

from brygga.flows.reconciliation import compare
from brygga.flows.reconciliation.compare import Ledgered, Placed
from brygga.records import Admission, Condition, Merit, Participant

R = "HT2027"


def _admission(aid="A1", pnr="199001011239", offer="T1", *, aterbud=None, package=None, conditions=()):
    return Admission(aid, 1, R, pnr, "Anna", "Berg", offer, "TDA100", "11001", bool(package), True, True, False,
                     package_id=package, conditions=tuple(conditions), aterbud_date=aterbud)


def _placed(state="placed", *, student="S1", package=None, instance="T1"):
    return Placed(state, student, "AU1", package, instance)


def _p(state="ej_paborjad", student="S1", instance="T1", uid="AU1"):
    return Participant(uid, student, instance, state)


def _kinds(found):
    return [(f.kind, f.subject, f.action) for f in found]


def test_an_admission_ladok_has_as_nya_does_is_no_drift():
    a = _admission(conditions=[Condition("V1", "x")])
    assert compare.admissions(R, [a], {"A1": _placed()}, {}, compare.best([_p()]), {"AU1": {"V1"}}) == []


def test_missing_in_ladok_and_only_what_brygga_settled():
    a = _admission()
    assert _kinds(compare.admissions(R, [a], {"A1": _placed()}, {}, {}, {})) == [
        ("admission.missing_in_ladok", "A1", "place_again")]
    for state in ("pending", "unhandled", "invalid", "declined"):  # Brygga's own business: the queue shows it
        assert compare.admissions(R, [a], {"A1": _placed(state)}, {}, {}, {}) == []
    assert compare.admissions(R, [a], {}, {}, {}, {}) == []  # not read from NyA yet


def test_aterbud_on_one_side_only():
    with_aterbud = _admission(aterbud="2027-08-20")
    assert _kinds(compare.admissions(R, [with_aterbud], {"A1": _placed()}, {}, compare.best([_p()]), {})) == [
        ("aterbud.only_in_nya", "A1", "open_case")]
    assert compare.admissions(R, [with_aterbud], {"A1": _placed()}, {}, compare.best([_p("aterbud")]), {}) == []
    # an återbudsärende already open for it: the operator's work in hand, not drift
    assert compare.admissions(R, [with_aterbud], {"A1": _placed()}, {}, compare.best([_p()]), {},
                              open_cases={"A1"}) == []
    assert compare.admissions(R, [with_aterbud], {"A1": _placed()}, {}, {}, {}) == []  # gone from Ladok too
    assert _kinds(compare.admissions(R, [_admission()], {"A1": _placed()}, {}, compare.best([_p("aterbud")]), {})) == [
        ("aterbud.only_in_ladok", "A1", "report_aterbud")]


def test_the_active_participant_counts_when_an_old_admission_was_given_up():
    ladok = compare.best([_p("aterbud", uid="OLD"), _p("registrerad", uid="NEW")])
    assert ladok[("S1", "T1")].uid == "NEW"
    assert compare.admissions(R, [_admission()], {"A1": _placed()}, {}, ladok, {}) == []


def test_villkor_differ_only_where_asked_and_lifted_ones_do_not_count():
    a = _admission(conditions=[Condition("V1", "x"), Condition("V2", "y", lifted=True)])
    ladok = compare.best([_p()])
    assert compare.admissions(R, [a], {"A1": _placed()}, {}, ladok, {"AU1": {"V1"}}) == []
    (f,) = compare.admissions(R, [a], {"A1": _placed()}, {}, ladok, {"AU1": set()})
    assert (f.kind, f.detail["nya"], f.detail["ladok"]) == ("villkor.differ", ["V1"], [])
    assert compare.admissions(R, [a], {"A1": _placed()}, {}, ladok, {}) == []  # not asked: not compared


def test_wrong_package_as_brygga_placed_it_and_the_student_found_by_personnummer():
    a = _admission(package="P1")
    ladok = compare.best([_p(student="S9")])
    (f,) = compare.admissions(R, [a], {"A1": _placed(student=None, package="P2")}, {a.personnummer: "S9"}, ladok, {})
    assert (f.kind, f.action, f.detail["nya_package"], f.detail["ladok_package"]) == (
        "admission.wrong_package", "ompröva", "P1", "P2")


def _merit(ref, grade="A"):
    return Merit(ref, "199001011239", "resultat", "TDA100", "2027-01-15", grade=grade)


def test_merits_nya_lacks_holds_otherwise_or_holds_against_ladok():
    a, b, c, d = _merit("m1"), _merit("m2"), _merit("m3"), _merit("m4")
    ledger = [Ledgered("m1", "m1", "present", True, a.content_hash()),
              Ledgered("m2", "m2", "present", True, b.content_hash()),
              Ledgered("m3", "m3", "withdrawn", True, None),
              Ledgered("m4", "m4", "present", True, d.content_hash()),
              Ledgered("m5", "m5", "present", False, _merit("m5").content_hash())]  # on its way: not drift
    held = [_merit("m2", grade="B"), c, d]
    assert _kinds(compare.merits("199001011239", ledger, held)) == [
        ("merit.missing_in_nya", "m1", "send_merit"), ("merit.other_version", "m2", "send_merit"),
        ("merit.withdrawn_in_ladok", "m3", "withdraw_merit")]
    # a legacy merit NyA knows by its HandelseUID: compared by that id
    legacy = [Ledgered("ladok:resultat:R1", "H-123", "present", True, _merit("H-123").content_hash())]
    assert compare.merits("199001011239", legacy, [_merit("H-123")]) == []
