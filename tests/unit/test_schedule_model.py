"""The schedule export's rules, without a peer or a store."""

from __future__ import annotations

from brygga.flows.schedule import model
from brygga.records import Participant, Utbildningstillfalle


def inst(uid="i1", start="2027-08-30", installt=False, programme=False, courses=()):
    return Utbildningstillfalle(uid=uid, utbildningskod="TDA357", tillfalleskod="12345", name_sv="Databaser",
                                name_en="Databases", credits="7.5", start=start, end="2027-10-30", studietakt=100,
                                studieort="Göteborg", installt=installt, utannonserat=True, is_programme=programme,
                                course_uids=tuple(courses), undervisningssprak="sv", undervisningstid="DAG",
                                organisation="DATA")


def part(student, state, instance="i1", protected=False):
    return Participant(uid=f"a-{student}-{instance}", student_uid=student, instance_uid=instance, state=state,
                       fornamn=None if protected else "Ann", efternamn=None if protected else "Berg",
                       protected=protected)


def by_key(objects):
    return {o.key: o for o in objects}


def test_roles_counts_and_who_leaves_the_group():
    ps = [part("s1", "ej_paborjad"), part("s2", "registrerad"), part("s3", "aterbud"), part("s4", "avbrott"),
          part("s5", "tidigtavbrott")]
    objs = by_key(model.build([inst()], ps, {"s1": "ann@example.se"}))
    assert {k for k in objs if k.startswith("membership:")} == {"membership:i1:s1", "membership:i1:s2"}
    assert objs["membership:i1:s1"].fields["roll"] == "antagen"
    assert objs["membership:i1:s2"].fields["roll"] == "registrerad"
    f = objs["instance:i1"].fields
    assert (f["antal_antagna"], f["antal_forvantade"], f["antal_registrerade"], f["antal_aterbud"],
            f["antal_avbrott"]) == (5, 1, 1, 1, 2)
    assert objs["student:s1"].fields == {"fornamn": "Ann", "efternamn": "Berg", "epost": "ann@example.se"}
    assert "student:s3" not in objs  # not in any group
    assert [o.kind for o in model.build([inst()], ps, {})][0] == "student"  # references first


def test_a_protected_student_is_the_uid_only_even_with_an_email_at_hand():
    objs = by_key(model.build([inst()], [part("s1", "registrerad", protected=True)], {"s1": "secret@example.se"}))
    assert objs["student:s1"].fields == {"skyddad": True}


def test_a_cancelled_instance_is_inactive_with_its_group_and_has_no_members():
    objs = by_key(model.build([inst(installt=True)], [part("s1", "registrerad")], {}))
    assert objs["instance:i1"].active is False and objs["group:i1:grupp"].active is False
    assert not [k for k in objs if k.startswith(("membership:", "student:"))]


def test_programme_lists_its_package():
    objs = by_key(model.build([inst("p1", programme=True, courses=["c1", "c2"])], [], {}))
    assert objs["instance:p1"].fields["typ"] == "program" and objs["instance:p1"].fields["kurstillfallen"] == ["c1", "c2"]


def test_diff_sends_only_what_changed_and_ends_what_is_gone():
    built = model.build([inst()], [part("s1", "registrerad")], {})
    held = {o.key: (o.content_hash, "active", o.instance_uid) for o in built}
    assert model.diff(built, held, removable=held) == []
    held["membership:i1:s9"] = ("x", "active", "i1")
    held["instance:i9"] = ("x", "active", "i9")
    held["student:s9"] = ("x", "deleted", None)  # already ended: nothing again
    changes = model.diff(built, held, removable=held)
    assert [(c.action, c.obj.key) for c in changes] == [("delete", "membership:i1:s9"), ("deactivate", "instance:i9")]
    changed = model.build([inst()], [part("s1", "ej_paborjad")], {})
    assert {c.obj.key for c in model.diff(changed, held)} == {"membership:i1:s1", "instance:i1"}


def test_hash_and_term_rules():
    assert model.content_hash("student", {"a": 1, "b": None}, True) == model.content_hash("student", {"a": 1}, True)
    assert model.content_hash("student", {"a": 1}, True) != model.content_hash("student", {"a": 1}, False)
    assert model.startperiod("2027-08-30") == "HT2027" and model.startperiod("2028-01-17") == "VT2028"
    assert model.startperiod("not a date") is None
    assert model.in_scope(inst(), ["HT2027"]) and not model.in_scope(inst(), ["VT2028"])
    assert not model.in_scope(inst(), ["HT2027"], "MATE")
