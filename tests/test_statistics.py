"""Operator statistics (pandas) over the queues, on both stores: backlog per local day and
handling times, from rows with known timestamps."""

from __future__ import annotations

import datetime as dt

import pytest

from brygga.views import statistics
from brygga.store.models import AterbudCase, UnhandledAdmission, as_utc

UTC = dt.UTC
TODAY = dt.date(2027, 9, 3)


def _at(day: int, hour: int) -> dt.datetime:  # a UTC time on 2027-09-<day>
    return dt.datetime(2027, 9, day, hour, tzinfo=UTC)


@pytest.fixture
def seeded(store):
    with store.transaction() as s:
        s.add_all([
            # opened 1 Sep 10:00, handled 2 Sep 10:00 (24 h)
            UnhandledAdmission(nya_admission_id="A1", round="HT2027", hinder="redan.paborjat", reason="r",
                               admission={}, status="manual", created_at=_at(1, 10), updated_at=_at(2, 10)),
            # opened 1 Sep 12:00, handled 1 Sep 14:00 (2 h)
            UnhandledAdmission(nya_admission_id="A2", round="HT2027", hinder="redan.paborjat", reason="r",
                               admission={}, status="resolved", created_at=_at(1, 12), updated_at=_at(1, 14)),
            # opened 2 Sep 22:30 UTC = 3 Sep 00:30 local: counts from 3 Sep; still open
            UnhandledAdmission(nya_admission_id="A3", round="HT2027", hinder="ovrigt", reason="r",
                               admission={}, status="open", created_at=dt.datetime(2027, 9, 2, 22, 30, tzinfo=UTC),
                               updated_at=dt.datetime(2027, 9, 2, 22, 30, tzinfo=UTC)),
            AterbudCase(nya_aterbud_id="C1", cause="registered", suggested_action="avbrott", status="closed",
                        created_at=_at(1, 8), closed_at=_at(3, 8)),  # 48 h
            AterbudCase(nya_aterbud_id="C2", cause="registered", suggested_action="avbrott", status="open",
                        created_at=_at(2, 8)),
        ])
    return store


def test_backlog_per_local_day(seeded):
    b = statistics.backlog(seeded, days=3, today=TODAY)
    assert list(b.index) == [dt.date(2027, 9, 1), dt.date(2027, 9, 2), dt.date(2027, 9, 3)]
    assert list(b["queue:redan.paborjat"]) == [1, 0, 0]  # A1 open at the end of 1 Sep; A2 handled that day
    assert list(b["queue:ovrigt"]) == [0, 0, 1]  # 22:30 UTC on 2 Sep is 3 Sep in Stockholm
    assert list(b["queue"]) == [1, 0, 1]
    assert list(b["cases"]) == [1, 2, 1]
    csv = statistics.to_csv(b)
    assert csv.splitlines()[0].startswith("day,") and "2027-09-03" in csv


def test_handling_times(seeded):
    h = statistics.handling_times(seeded).set_index("kind")
    assert h.loc["queue:redan.paborjat", "handled"] == 2
    assert h.loc["queue:redan.paborjat", "median_hours"] == 13.0
    assert h.loc["queue:redan.paborjat", "p90_hours"] == pytest.approx(21.8)
    assert h.loc["cases:registered", "handled"] == 1 and h.loc["cases:registered", "median_hours"] == 48.0
    assert "queue:ovrigt" not in h.index  # nothing handled yet


def test_an_empty_store(store):
    assert statistics.handling_times(store).empty
    b = statistics.backlog(store, days=2, today=TODAY)
    assert list(b["queue"]) == [0, 0] and list(b["cases"]) == [0, 0]


def test_from_the_command_line(seeded, capsys):
    from brygga import cli

    assert cli.main(["stats", "handling", "--csv", "--url", seeded.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "kind,handled,median_hours,p90_hours" and "queue:redan.paborjat,2,13.0,21.8" in out
    assert cli.main(["stats", "backlog", "--days", "2", "--url", seeded.url]) == 0
    assert "queue" in capsys.readouterr().out


def test_daily_opened_resolved_and_backlog_per_local_day(seeded):
    df = statistics.daily(seeded, days=3, today=TODAY)
    assert list(df.columns) == ["day", "kind", "group", "opened", "resolved", "backlog"]
    rows = {(str(r.day), r.kind, r.group): (r.opened, r.resolved, r.backlog) for r in df.itertuples()}
    assert rows[("2027-09-01", "queue", "redan.paborjat")] == (2, 1, 1)  # A1 and A2 opened, A2 handled
    assert rows[("2027-09-02", "queue", "redan.paborjat")] == (0, 1, 0)
    # 22:30 UTC on 2 Sep is 00:30 on 3 Sep in Stockholm (summer time)
    assert rows[("2027-09-02", "queue", "ovrigt")] == (0, 0, 0)
    assert rows[("2027-09-03", "queue", "ovrigt")] == (1, 0, 1)
    assert rows[("2027-09-03", "cases", "registered")] == (0, 1, 1)
    assert len(df) == 3 * 3  # every day for every group


def test_round_filter_and_resolved_at_over_a_later_update(store):
    with store.transaction() as s:
        s.add_all([
            # handled after 2 h; retention touched the row a year later (updated_at moves, resolved_at not)
            UnhandledAdmission(nya_admission_id="R1", round="HT2027", hinder="ovrigt", reason="r", admission={},
                               status="resolved", created_at=_at(1, 10), resolved_at=_at(1, 12),
                               updated_at=dt.datetime(2028, 9, 1, tzinfo=UTC)),
            UnhandledAdmission(nya_admission_id="R2", round="VT2028", hinder="ovrigt", reason="r", admission={},
                               status="resolved", created_at=_at(1, 10), resolved_at=_at(1, 20), updated_at=_at(1, 20)),
            AterbudCase(nya_aterbud_id="C9", round="VT2028", cause="registered", suggested_action="avbrott",
                        status="open", created_at=_at(1, 8)),
        ])
    ht = statistics.handling_times(store, round="HT2027")
    assert ht.to_dict("records") == [{"kind": "queue:ovrigt", "handled": 1, "median_hours": 2.0, "p90_hours": 2.0}]
    both = statistics.handling_times(store)
    assert both.to_dict("records")[0]["median_hours"] == 6.0  # 2 h and 10 h
    assert statistics.rounds(store) == ["HT2027", "VT2028"]
    vt = statistics.daily(store, days=1, today=dt.date(2027, 9, 1), round="VT2028")
    assert sorted(vt["kind"] + ":" + vt["group"]) == ["cases:registered", "queue:ovrigt"]


def test_the_queue_records_when_an_entry_was_resolved(store):
    from brygga.flows.admissions import queue
    from brygga.store.models import NyaAdmission

    with store.transaction() as s:
        s.add(NyaAdmission(admission_id="Q1", round="HT2027", sequence=1, state="unhandled"))
        queue.queue(s, "Q1", "HT2027", None, None, "11001", "ovrigt", "r", [], {"programme_code": "TKDAT"})
    with store.transaction() as s:
        assert s.query(UnhandledAdmission).one().programme_code == "TKDAT"  # a column: the console filters by it
        queue.resolve(s, "Q1", "ompröva", "anna")
    with store.transaction() as s:
        u = s.query(UnhandledAdmission).one()
        assert u.status == "resolved" and u.resolved_at is not None
        queue.queue(s, "Q1", "HT2027", None, None, "11001", "ovrigt", "again", [], {})  # back in the queue
    with store.transaction() as s:
        assert s.query(UnhandledAdmission).one().resolved_at is None


def _entry(aid: str, created: dt.datetime, resolved: dt.datetime | None = None, *, hinder: str = "ovrigt",
           round: str = "HT2027") -> UnhandledAdmission:
    return UnhandledAdmission(nya_admission_id=aid, round=round, hinder=hinder, reason="r", admission={},
                              status="open" if resolved is None else "resolved", created_at=created,
                              resolved_at=resolved, updated_at=resolved or created)


def test_local_day_boundaries_in_summer_winter_and_on_the_dst_day(store):
    t = dt.datetime
    with store.transaction() as s:
        s.add_all([
            # summer (UTC+2): 23:30 UTC is 01:30 the next day, 21:59 UTC is 23:59 the same day
            _entry("S1", t(2027, 7, 15, 23, 30, tzinfo=UTC), hinder="summer"),
            _entry("S2", t(2027, 7, 15, 21, 59, tzinfo=UTC), t(2027, 7, 15, 22, 0, tzinfo=UTC), hinder="summer"),
            # winter (UTC+1): 22:30 UTC is 23:30 the same day, 23:00 UTC is midnight of the next
            _entry("W1", t(2027, 1, 15, 22, 30, tzinfo=UTC), t(2027, 1, 15, 23, 0, tzinfo=UTC), hinder="winter"),
            # 31 Oct 2027 has 25 hours: it ends at 23:00 UTC, so 22:30 UTC still belongs to it
            _entry("D1", t(2027, 10, 31, 22, 30, tzinfo=UTC), hinder="dst"),
        ])

    def rows(today: dt.date, days: int) -> dict[tuple[str, str], tuple[int, int, int]]:
        df = statistics.daily(store, days=days, today=today)
        return {(str(r.day), r.group): (r.opened, r.resolved, r.backlog) for r in df.itertuples()}

    summer = rows(dt.date(2027, 7, 16), 2)
    assert summer[("2027-07-15", "summer")] == (1, 0, 1)  # S2 opened 23:59 local, resolved at 00:00 the 16th
    assert summer[("2027-07-16", "summer")] == (1, 1, 1)  # S1 opened 01:30 local; S2 resolved
    winter = rows(dt.date(2027, 1, 16), 2)
    assert winter[("2027-01-15", "winter")] == (1, 0, 1)
    assert winter[("2027-01-16", "winter")] == (0, 1, 0)
    dst = rows(dt.date(2027, 11, 1), 2)
    assert dst[("2027-10-31", "dst")] == (1, 0, 1) and dst[("2027-11-01", "dst")] == (0, 0, 1)
    b = statistics.backlog(store, days=2, today=dt.date(2027, 11, 1))
    assert list(b["queue:dst"]) == [1, 1] and list(b["queue:winter"]) == [0, 0]


def test_a_later_update_moves_updated_at_but_not_the_handling_time(store):
    with store.transaction() as s:
        s.add_all([_entry("P1", _at(1, 10), _at(1, 13)),
                   # from before resolved_at existed (and not backfilled): updated_at is its handling time
                   UnhandledAdmission(nya_admission_id="P2", round="HT2027", hinder="legacy", reason="r",
                                      admission={}, status="manual", created_at=_at(1, 10), updated_at=_at(1, 11))])
    with store.transaction() as s:  # the retention purge: an ORM update, which bumps updated_at
        u = s.query(UnhandledAdmission).filter_by(nya_admission_id="P1").one()
        u.personnummer, u.admission, u.purged_at = None, {}, dt.datetime(2028, 9, 1, tzinfo=UTC)
    with store.transaction() as s:
        u = s.query(UnhandledAdmission).filter_by(nya_admission_id="P1").one()
        assert as_utc(u.updated_at) != _at(1, 13)  # moved (to now): handling from updated_at would be wrong
    h = statistics.handling_times(store).set_index("kind")
    assert h.loc["queue:ovrigt", "median_hours"] == 3.0
    assert h.loc["queue:legacy", "median_hours"] == 1.0
    df = statistics.daily(store, days=2, today=dt.date(2027, 9, 2))
    assert df[df["group"] == "ovrigt"][["opened", "resolved", "backlog"]].values.tolist() == [[1, 1, 0], [0, 0, 0]]


def test_daily_and_rounds_of_an_empty_store(store):
    df = statistics.daily(store, days=3, today=TODAY)
    assert df.empty and list(df.columns) == ["day", "kind", "group", "opened", "resolved", "backlog"]
    assert statistics.rounds(store) == []
    with store.transaction() as s:  # a case without a round (from before rounds were recorded) is no round
        s.add(AterbudCase(nya_aterbud_id="C0", cause="registered", suggested_action="avbrott", status="open"))
    assert statistics.rounds(store) == []
    assert statistics.daily(store, days=1, round="HT2027").empty
