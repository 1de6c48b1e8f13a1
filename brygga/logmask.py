"""Personnummer never reach a log in clear: YYYYMMDD-NNNN is written YYYYMMDD-****.

Two layers:
- ``get_logger(name)`` returns a logger adapter that masks the message and its arguments before
  the record is even created, so masking does not depend on how the host (Airflow, uvicorn,
  pytest) configured its handlers;
- ``install()`` adds ``MaskingFilter`` to every handler of the root logger, which also masks
  third-party messages and formatted tracebacks (requests puts URLs with personnummer in them).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import MutableMapping
from typing import Any

from brygga.personnummer import mask


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            msg = str(record.msg)
        record.msg, record.args = mask(msg), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


_FILTER = MaskingFilter()


def install(logger: logging.Logger | None = None) -> None:
    """Attach the masking filter to all handlers of ``logger`` (root by default). Idempotent."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


class _MaskingAdapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, mask(text), **kwargs)


def get_logger(name: str) -> logging.LoggerAdapter[logging.Logger]:
    return _MaskingAdapter(logging.getLogger(name), {})
