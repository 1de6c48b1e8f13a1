"""The schedule export (flow 5, first half): Ladok's instances, counts and student groups to a
scheduling system, delta and exactly once. ``model`` holds the rules (pure), ``reading`` what is
read from Ladok, ``planning`` the diff into the outbox, ``sending`` the outbox to the system,
``following`` the feed that marks instances to look at again."""

CHECKPOINT = "schedule"
ACTOR = "airflow:brygga_schedule_export"
KIND = "schedule-object"


def destination(target: str) -> str:
    return f"schema:{target}"
