import logging

from brygga.logmask import MaskingFilter, get_logger


def _capture(logger_name: str):
    records: list[str] = []

    class H(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    h = H()
    h.setFormatter(logging.Formatter("%(message)s"))
    lg = logging.getLogger(logger_name)
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    return records, h


def test_adapter_masks_message_and_args():
    records, _ = _capture("brygga.test.adapter")
    log = get_logger("brygga.test.adapter")
    log.info("placed %s on %s", "198112189876", "TDA357")
    log.warning("raw 19811218-9876 in text")
    assert records == ["placed 19811218-**** on TDA357", "raw 19811218-**** in text"]


def test_filter_masks_third_party_messages_and_tracebacks():
    records, h = _capture("thirdparty.masking")
    h.addFilter(MaskingFilter())
    lg = logging.getLogger("thirdparty.masking")
    try:
        raise RuntimeError("GET /studentinformation/student/personnummer/198112189876 failed")
    except RuntimeError:
        lg.exception("lookup of %s", "811218-9876")
    assert "9876" not in records[0]
    assert "198112189876" not in records[0]
    assert "19811218-****" in records[0] and "811218-****" in records[0]
