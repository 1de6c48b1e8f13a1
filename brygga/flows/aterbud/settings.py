"""The university's återbud settings (store table ``setting``, every change audited)."""

from __future__ import annotations

from brygga.store import Store, ops

SETTING_ACCEPT_FROM_NYA = "aterbud.accept_from_nya"
SETTING_STUDENTS_MAY_ENTER = "aterbud.students_may_enter"
SETTINGS_DEFAULTS = {SETTING_ACCEPT_FROM_NYA: True, SETTING_STUDENTS_MAY_ENTER: True}


def settings(store: Store) -> dict[str, bool]:
    with store.transaction() as s:
        return {k: bool(ops.setting_get(s, k, d)) for k, d in SETTINGS_DEFAULTS.items()}


def set_settings(store: Store, *, actor: str, accept_from_nya: bool | None = None,
                 students_may_enter: bool | None = None) -> dict[str, bool]:
    """Change the university's återbud settings (each change audited with old and new value)."""
    with store.transaction() as s:
        for key, value in ((SETTING_ACCEPT_FROM_NYA, accept_from_nya), (SETTING_STUDENTS_MAY_ENTER, students_may_enter)):
            if value is not None and bool(ops.setting_get(s, key, SETTINGS_DEFAULTS[key])) != bool(value):
                ops.setting_set(s, key, bool(value), actor)
    return settings(store)
