"""Ladok's grade scales for the merit sync: a result's ``BetygsgradID`` read through what Ladok
lists in its grunddata (``/kataloginformation/grunddata/betygsskala``), never a hard-coded table.

The scales are kept in the store (``ladok_grade``), so a run starts from what the last one read.
A grade or scale that is not there (a new scale, a store that never read them) makes the book read
them again from Ladok, at most once per run; only a grade still unknown after that is a reason to
quarantine the result."""

from __future__ import annotations

from sqlalchemy import select

from brygga.flows.ports import Ladok
from brygga.logmask import get_logger
from brygga.records import GradeScale
from brygga.store import Store, ops
from brygga.store.models import LadokGrade, utcnow

log = get_logger("brygga.flows.merits")


class GradeBook:
    """Grade id -> (scale id, grade code), from the store, read again from Ladok once per run when
    a result names one not there. Without a store (tests, a one-off) it keeps them in memory."""

    def __init__(self, ladok: Ladok, store: Store | None = None):
        self.ladok, self.store = ladok, store
        self._grades: dict[str, tuple[str, str]] | None = None
        self.refreshed = False  # read from Ladok in this run
        self.requests = 0

    def code(self, scale_id: str | None, grade_id: str) -> str | None:
        """The grade's code (A, FX, VG, P …), or None when Ladok does not list it (in that scale,
        when the result names one)."""
        hit = self._load().get(grade_id)
        if (hit is None or (scale_id and hit[0] != scale_id)) and not self.refreshed:
            hit = self.refresh().get(grade_id)
        if hit is None or (scale_id and hit[0] != scale_id):
            return None
        return hit[1]

    def why_unknown(self, scale_id: str | None, grade_id: str | None) -> str:
        """The quarantine reason for a grade ``code`` did not find."""
        if not grade_id:
            return f"the result has no BetygsgradID (BetygsskalaID {scale_id!r}): a resultat needs a grade"
        hit = self._load().get(grade_id)
        if hit is not None and scale_id and hit[0] != scale_id:
            return (f"BetygsgradID {grade_id} is a grade of scale {hit[0]} in Ladok's grade scales, "
                    f"not of BetygsskalaID {scale_id}")
        return (f"BetygsgradID {grade_id!r} (BetygsskalaID {scale_id!r}) is not in Ladok's grade scales, "
                "read again from Ladok in this run: a resultat needs a grade")

    def _load(self) -> dict[str, tuple[str, str]]:
        if self._grades is None:
            self._grades = {}
            if self.store is not None:
                with self.store.transaction() as s:
                    self._grades = {g: (sc, c) for g, sc, c in s.execute(
                        select(LadokGrade.grade_id, LadokGrade.scale_id, LadokGrade.code))}
        return self._grades

    def refresh(self) -> dict[str, tuple[str, str]]:
        """Read every scale from Ladok (transient errors propagate: the task retries) and keep them."""
        self.refreshed = True
        self.requests += 1
        scales = self.ladok.grade_scales()
        grades = {g.grade_id: (sc.scale_id, g.code) for sc in scales for g in sc.grades}
        if self.store is not None:
            self._store(scales)
        log.info("grade scales read from Ladok: %d scales, %d grades", len(scales), len(grades))
        self._grades = {**self._load(), **grades}
        return self._grades

    def _store(self, scales: list[GradeScale]) -> None:
        assert self.store is not None
        now = utcnow()
        rows = {g.grade_id: {"grade_id": g.grade_id, "scale_id": sc.scale_id, "scale_code": sc.code,
                             "code": g.code, "valid_final": g.valid_final, "fetched_at": now}
                for sc in scales for g in sc.grades}
        with self.store.transaction() as s:
            for row in s.scalars(select(LadokGrade).where(LadokGrade.grade_id.in_(list(rows)))):
                new = rows.pop(row.grade_id)  # known: kept as Ladok lists it now
                for k, v in new.items():
                    setattr(row, k, v)
            ops.insert_new(s, LadokGrade, ["grade_id"], list(rows.values()))
