"""Personnummer masked by Airflow's own secrets masker, so Airflow's task logs (tracebacks,
rendered fields, the supervisor's copy of every line) never carry one in clear.

Airflow masks secrets it was told about with one regex (``SecretsMasker.replacer``) in every
process that writes logs: the task's supervisor masks the lines the task sends it, the api-server
masks rendered fields. ``airflow.cfg`` names :func:`adapter` as ``[logging] secret_mask_adapter``,
which Airflow imports while it configures its maskers in every process; importing this module
gives both masker instances (``airflow._shared`` and ``airflow.sdk._shared``) a subclass whose
``replacer`` masks personnummer (``brygga.personnummer.mask``) before the secrets, and exception
messages before they are rendered; and it makes structlog's renderers (the last step of every
structlog line: Airflow's console output and JSON task-log files) mask what they produce, because
Airflow's masking step is not in every process's chain (``dag.test()`` has none). Airflow resets
the patterns (``reset_secrets_masker``), never the class, so the rule holds for the process's
life. The adapter itself leaves secrets as they are."""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any

from brygga.personnummer import mask

MASKER_MODULES = ("airflow.sdk._shared.secrets_masker", "airflow._shared.secrets_masker")


class _Replacer:
    """What Airflow calls as ``replacer.sub(replacement, text)``: its secrets, then personnummer (a
    numeric secret that looks like a personnummer must still match its own pattern)."""

    __slots__ = ("secrets",)

    def __init__(self, secrets: re.Pattern[str] | None):
        self.secrets = secrets

    def sub(self, replacement: str, text: str) -> str:
        if self.secrets is not None:
            text = self.secrets.sub(replacement, text)
        return mask(text)


_CLASSES: dict[type, type] = {}


def _masking_class(base: type) -> type:
    if base not in _CLASSES:
        def _get(self: Any) -> _Replacer:
            return _Replacer(self.__dict__.get("_brygga_secrets"))

        def _set(self: Any, value: re.Pattern[str] | None) -> None:
            self.__dict__["_brygga_secrets"] = value

        def _redact(self: Any, item: Any, name: str | None, depth: int, max_depth: int,
                    replacement: str = "***") -> Any:
            # An exception reaches the renderer as an object (``exc_info``, or True for "the one
            # being handled"), formatted only after masking: its messages (args, and those of its
            # causes) are masked in place first, as Airflow's logging filter does.
            if name == "exc_info" and item is True:
                item = sys.exc_info()
                if item[1] is None:
                    return True
            if isinstance(item, BaseException):
                return self._redact_exception_with_context_or_cause(item)
            return base._redact(self, item, name, depth, max_depth, replacement=replacement)

        _CLASSES[base] = type(f"Personnummer{base.__name__}", (base,), {
            "replacer": property(_get, _set), "_redact": _redact, "_brygga_masks_personnummer": True,
            "__doc__": "Airflow's secrets masker that also masks personnummer (brygga.airflow_masking)."})
    return _CLASSES[base]


def install() -> list[str]:
    """Make Airflow's masker instances mask personnummer; returns the modules done. Idempotent."""
    done = []
    for name in MASKER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        masker = module._secrets_masker()
        if not getattr(type(masker), "_brygga_masks_personnummer", False):
            secrets = masker.__dict__.pop("replacer", None)
            masker.__class__ = _masking_class(type(masker))
            masker.replacer = secrets
        done.append(name)
    return done


def _masking_renderer(cls: type) -> None:
    """Mask what a structlog renderer produces: the last step of every structlog log line (Airflow's
    console lines, its JSON task-log lines), tracebacks included, whatever ran before it."""
    original = cls.__call__
    if getattr(original, "_brygga_masks_personnummer", False):
        return

    def __call__(self: Any, logger: Any, method_name: str, event_dict: Any) -> Any:
        out = original(self, logger, method_name, event_dict)
        if isinstance(out, str):
            return mask(out)
        if isinstance(out, bytes):
            return mask(out.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
        return out

    __call__._brygga_masks_personnummer = True  # type: ignore[attr-defined]
    cls.__call__ = __call__  # type: ignore[method-assign]


def install_renderers() -> list[str]:
    """Make structlog's renderers mask personnummer in this process. Idempotent."""
    try:
        import structlog
    except ImportError:
        return []
    done = []
    classes = [structlog.dev.ConsoleRenderer, structlog.processors.JSONRenderer,
               structlog.processors.KeyValueRenderer, structlog.processors.LogfmtRenderer]
    try:  # what Airflow renders with when [logging] log_format is set
        from airflow._shared.logging.percent_formatter import PercentFormatRender
        classes.append(PercentFormatRender)
    except ImportError:
        pass
    for cls in classes:
        _masking_renderer(cls)
        done.append(cls.__name__)
    return done


def adapter(secret: str) -> str:
    """``[logging] secret_mask_adapter``: secrets are masked as they are."""
    return secret


install()
install_renderers()
