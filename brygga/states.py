"""Every state, status and code Brygga stores or decides on, in one place: ``StrEnum``s, so they
are the plain strings the store and the JSON hold, and a typo is an error, not a new state.

The texts operators read for them (Swedish, as Ladok words them) sit beside, in the ``*_TEXT``
tables, and are what the CLI, the DAG logs and the operator console show."""

from __future__ import annotations

from enum import StrEnum


class AdmissionState(StrEnum):
    """``nya_admission.state``: what Brygga did with an admission from NyA."""

    PENDING = "pending"  # read from NyA, not placed yet
    PLACED = "placed"  # in the student's study plan in Ladok
    UNHANDLED = "unhandled"  # could not be placed: in the queue (ej hanterad antagning)
    HANDLED = "handled"  # an operator settled it by hand in Ladok
    DECLINED = "declined"  # återbud before it ever reached Ladok: never placed
    INVALID = "invalid"  # NyA sent it broken: in the queue until NyA corrects it


class QueueStatus(StrEnum):
    """``unhandled_admission.status``."""

    OPEN = "open"
    RESOLVED = "resolved"  # placed after all (ompröva, corrected in NyA) or declined by an återbud
    MANUAL = "manual"  # marked handled by an operator


class Hinder(StrEnum):
    """Brygga's hinder codes: the categories of the unhandled-admission queue."""

    KUNDE_INTE_PLACERAS_I_PLAN = "kunde.inte.placeras.i.plan"
    REDAN_PABORJAT = "redan.paborjat"
    PERSONNUMMER_OGILTIGT = "personnummer.ogiltigt"
    PERSONNUMMER_OKANT = "personnummer.okant"
    UTBILDNINGSTILLFALLE_SAKNAS = "utbildningstillfalle.saknas"
    UTBILDNINGSTILLFALLE_INSTALLT = "utbildningstillfalle.installt"
    ANTAGNING_FINNS = "antagning.finns"
    ANMALNINGSNUMMER_KONFLIKT = "anmalningsnummer.konflikt"
    OGILTIG_ANTAGNING = "ogiltig.antagning"
    ATERBUD_UNDER_PLACERING = "aterbud.under.placering"
    OVRIGT = "ovrigt"


class CaseCause(StrEnum):
    """``aterbud_case.cause``: why an återbud from NyA could not be applied in Ladok."""

    REGISTERED = "registered"
    ALREADY_ATERBUD = "already_aterbud"
    AVBROTT_EXISTS = "avbrott_exists"
    NOT_ACCEPTED = "not_accepted"
    PLACED_MEANWHILE = "placed_meanwhile"
    NOT_IN_LADOK = "not_in_ladok"  # the reconciliation found NyA's återbud missing in Ladok


class CaseAction(StrEnum):
    """``aterbud_case.suggested_action``."""

    EARLY_AVBROTT = "early_avbrott"
    AVBROTT = "avbrott"
    NONE = "none"
    ATERBUD = "aterbud"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class OutboxStatus(StrEnum):
    """``outbox_message.status``."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # backing off, tried again later
    DEAD = "dead"  # given up (and quarantined)
    CANCELLED = "cancelled"  # nothing to send any more: superseded, or taken back before it was sent


#: Outbox rows that are still to be sent.
OUTBOX_WAITING = (OutboxStatus.PENDING, OutboxStatus.FAILED)


class InboxStatus(StrEnum):
    """``inbox_message.status``: what became of an inbound message seen once."""

    PROCESSED = "processed"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"


HINDER_TEXT: dict[str, str] = {
    Hinder.KUNDE_INTE_PLACERAS_I_PLAN: "Antagning kunde inte placeras i plan",
    Hinder.REDAN_PABORJAT: "Studenten har redan påbörjat utbildningen",
    Hinder.PERSONNUMMER_OGILTIGT: "Ogiltigt personnummer",
    Hinder.PERSONNUMMER_OKANT: "Personnumret finns inte i folkbokföringen",
    Hinder.UTBILDNINGSTILLFALLE_SAKNAS: "Utbildningstillfället finns inte i Ladok",
    Hinder.UTBILDNINGSTILLFALLE_INSTALLT: "Utbildningstillfället är inställt",
    Hinder.ANTAGNING_FINNS: "Studenten är redan antagen till utbildningstillfället",
    Hinder.ANMALNINGSNUMMER_KONFLIKT: "Anmälningsnumret är redan använt för en annan antagning",
    Hinder.OGILTIG_ANTAGNING: "Antagningen från NyA är ofullständig",
    Hinder.ATERBUD_UNDER_PLACERING: "Återbud kom från NyA medan antagningen placerades; lägg in återbudet i Ladok",
    Hinder.OVRIGT: "Övrigt hinder",
}

CAUSE_TEXT: dict[str, str] = {
    CaseCause.REGISTERED: "Studenten är registrerad på utbildningstillfället i Ladok",
    CaseCause.ALREADY_ATERBUD: "Återbud är redan inlagt i Ladok",
    CaseCause.AVBROTT_EXISTS: "Studenten har redan avbrott på utbildningstillfället i Ladok",
    CaseCause.NOT_ACCEPTED: "Lärosätet tar inte emot återbud från NyA automatiskt",
    CaseCause.PLACED_MEANWHILE: "Antagningen placerades i Ladok medan återbudet behandlades",
    CaseCause.NOT_IN_LADOK: "Avstämningen fann återbudet i NyA men inte i Ladok",
}


class DriftKind(StrEnum):
    """``drift.kind``: where NyA and Ladok disagree (the reconciliation)."""

    ADMISSION_MISSING_IN_LADOK = "admission.missing_in_ladok"
    ADMISSION_WRONG_PACKAGE = "admission.wrong_package"
    ATERBUD_ONLY_IN_NYA = "aterbud.only_in_nya"
    ATERBUD_ONLY_IN_LADOK = "aterbud.only_in_ladok"
    VILLKOR_DIFFER = "villkor.differ"
    MERIT_MISSING_IN_NYA = "merit.missing_in_nya"
    MERIT_OTHER_VERSION = "merit.other_version"
    MERIT_WITHDRAWN_IN_LADOK = "merit.withdrawn_in_ladok"


class DriftAction(StrEnum):
    """``drift.action``: the flow function that repairs a drift (the console's button)."""

    PLACE_AGAIN = "place_again"  # the admission import places it again (idempotent in Ladok)
    OMPROVA = "ompröva"  # place it again in NyA's package
    OPEN_CASE = "open_case"  # an återbudsärende for staff
    REPORT_ATERBUD = "report_aterbud"  # tell NyA of Ladok's återbud
    SYNC_VILLKOR = "sync_villkor"  # Ladok's villkor as NyA has them
    SEND_MERIT = "send_merit"  # the merit to NyA again
    WITHDRAW_MERIT = "withdraw_merit"  # take it back in NyA


DRIFT_TEXT: dict[str, str] = {
    DriftKind.ADMISSION_MISSING_IN_LADOK: "Antagen i NyA men saknas i Ladok",
    DriftKind.ADMISSION_WRONG_PACKAGE: "Placerad i en annan kurspaketering än NyA:s",
    DriftKind.ATERBUD_ONLY_IN_NYA: "Återbud i NyA men inte i Ladok",
    DriftKind.ATERBUD_ONLY_IN_LADOK: "Återbud i Ladok men inte i NyA",
    DriftKind.VILLKOR_DIFFER: "Behörighetsvillkoren skiljer sig mellan NyA och Ladok",
    DriftKind.MERIT_MISSING_IN_NYA: "Merit i Ladok saknas i NyA",
    DriftKind.MERIT_OTHER_VERSION: "NyA har en annan version av meriten",
    DriftKind.MERIT_WITHDRAWN_IN_LADOK: "NyA har en merit som Ladok tagit bort",
}

DRIFT_ACTION_TEXT: dict[str, str] = {
    DriftAction.PLACE_AGAIN: "Placera igen",
    DriftAction.OMPROVA: "Ompröva i NyA:s kurspaketering",
    DriftAction.OPEN_CASE: "Öppna återbudsärende",
    DriftAction.REPORT_ATERBUD: "Skicka återbudet till NyA",
    DriftAction.SYNC_VILLKOR: "Rätta villkoren i Ladok",
    DriftAction.SEND_MERIT: "Skicka meriten igen",
    DriftAction.WITHDRAW_MERIT: "Dra tillbaka meriten i NyA",
}

ACTION_TEXT: dict[str, str] = {
    CaseAction.EARLY_AVBROTT: "Lägg in avbrott från datumet då återbudet meddelades: inom 3 veckor från studiestart, "
                              "tidigt avbrott (registreringen återkallas); avsluta sedan ärendet",
    CaseAction.AVBROTT: "Lägg in avbrott från datumet då återbudet meddelades (mer än 3 veckor efter studiestart: "
                        "ordinarie avbrott); avsluta sedan ärendet",
    CaseAction.NONE: "Ingen åtgärd; avsluta ärendet",
    CaseAction.ATERBUD: "Lägg in återbudet i Ladok om det ska gälla; avsluta sedan ärendet",
}


#: What an operator is advised to do, per hinder.
HINDER_ADVICE: dict[str, str] = {
    Hinder.KUNDE_INTE_PLACERAS_I_PLAN: "Ompröva med vald kurspaketering, eller placera som fristående.",
    Hinder.REDAN_PABORJAT: "Gör tillfällesbyte i Ladok, markera sedan som hanterad.",
    Hinder.PERSONNUMMER_OKANT: "Kontrollera personnumret med NyA/studenten; etablera manuellt och ompröva.",
    Hinder.PERSONNUMMER_OGILTIGT: "Rätta personnumret i NyA; markera som hanterad.",
    Hinder.UTBILDNINGSTILLFALLE_SAKNAS: "Kontrollera utbudet; ompröva när tillfället finns.",
}
