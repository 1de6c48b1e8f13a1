"""The Ladok lookups of a merit-sync run, cached: whose personnummer a student uid is, which instance
a merit belongs to, the grades of Ladok's scales (who is an applicant: ``applicants.py``)."""

from __future__ import annotations

from adapters.http import if_found
from brygga.flows.merits.grades import GradeBook
from brygga.flows.ports import Ladok
from brygga.records import Utbildningstillfalle


class Enricher:
    """Ladok REST lookups for a run: student uid -> personnummer, tillfälle uid -> instance, grade
    id -> grade (through ``grades``, Ladok's grade scales kept in the store).

    Everything is cached (misses too), so a batch costs one request per distinct student and
    instance. Transient Ladok errors propagate (the task retries); 404 means "not there"."""

    def __init__(self, ladok: Ladok, grades: GradeBook | None = None):
        self.ladok = ladok
        self.grades = grades or GradeBook(ladok)
        self.students: dict[str, str | None] = {}
        self.tillfallen: dict[str, Utbildningstillfalle | None] = {}
        self.plans: dict[str, list[dict[str, str | None]]] = {}
        self.requests = 0

    def personnummer(self, student_uid: str) -> str | None:
        if student_uid not in self.students:
            self.requests += 1
            student = if_found(self.ladok.student, student_uid)
            self.students[student_uid] = (student.personnummer or None) if student else None
        return self.students[student_uid]

    def tillfalle(self, uid: str) -> Utbildningstillfalle | None:
        if uid not in self.tillfallen:
            self.requests += 1
            self.tillfallen[uid] = if_found(self.ladok.tillfalle, uid)
        return self.tillfallen[uid]

    def instans(self, student_uid: str, instans_uid: str) -> dict[str, str | None] | None:
        """The education of the student's study plan with this utbildningsinstans (examen events
        name the programme by its instans, which has no GET of its own)."""
        if student_uid not in self.plans:
            self.requests += 1
            self.plans[student_uid] = if_found(self.ladok.study_plan_educations, student_uid, default=[])
        return next((x for x in self.plans[student_uid] if x["instans_uid"] == instans_uid), None)

    def grade(self, scale_id: str | None, grade_id: str) -> str | None:
        before = self.grades.requests
        code = self.grades.code(scale_id, grade_id)
        self.requests += self.grades.requests - before
        return code

    def grade_unknown(self, scale_id: str | None, grade_id: str | None) -> str:
        return self.grades.why_unknown(scale_id, grade_id)
