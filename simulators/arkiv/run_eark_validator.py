"""Run eark-validator 1.1.x on one package, offline; print a short JSON verdict on stdout.

Runs in its own virtualenv (``.venv-eark``, created by ``scripts/bootstrap.sh``): eark-validator
pins ``lxml==5.1.0``. It imports nothing from Brygga.

Two things about eark-validator 1.1.x this works around, without touching its installed files:

* At import (``eark_validator/ipxml/schematron.py``) it reads four CSIP vocabularies from
  ``https://earkcsip.dilcis.eu/schema/`` with ``urllib.request.urlopen``. Its wheel ships the
  same files (``eark_validator/ipxml/resources/vocabs/``): ``urlopen`` is replaced, before the
  import, by one that answers those URLs from the shipped copies and refuses every other URL;
  ``socket`` connections are refused too, so the validator never reaches the network.
* Its exit code is 0 for an invalid package: the verdict is read from its report (structure
  ``WellFormed``, schema and schematron results ``VALID``, no message of severity ``Error``).
  It never checks checksums: the archive simulator does that itself.
* It reports SIP14 in error for every package: it tests an unqualified ``@NOTETYPE`` on each
  CREATOR agent's note (the METS schema only allows ``csip:NOTETYPE``). SIP14 is accepted, as a
  warning naming this, only when every such note does carry a valid ``csip:NOTETYPE``.

    .venv-eark/bin/python simulators/arkiv/run_eark_validator.py PACKAGE.zip

Output: ``{"valid": bool, "errors": [{"rule": .., "message": .., "location": ..}], "warnings": [..]}``;
exit 0 when it could judge the package (valid or not), 2 when the validator failed.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import socket
import sys
import tempfile
import urllib.request
from pathlib import Path

VOCABULARIES = "https://earkcsip.dilcis.eu/schema/"


def _vocab_dir() -> Path:
    spec = importlib.util.find_spec("eark_validator")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("eark_validator is not installed in this interpreter")
    return Path(list(spec.submodule_search_locations)[0]) / "ipxml" / "resources" / "vocabs"


def _offline() -> None:
    vocabs = _vocab_dir()

    def urlopen(url, *args, **kwargs):
        u = url.full_url if isinstance(url, urllib.request.Request) else str(url)
        if u.replace("http://", "https://", 1).startswith(VOCABULARIES):
            local = vocabs / u.rsplit("/", 1)[1]
            if local.is_file():
                return io.BytesIO(local.read_bytes())
        raise OSError(f"network access refused (offline): {u}")

    def refuse(*args, **kwargs):
        raise OSError("network access refused (offline)")

    urllib.request.urlopen = urlopen
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]


def _messages(report: dict) -> list[dict]:
    out = list((report.get("structure") or {}).get("messages") or [])
    meta = report.get("metadata") or {}
    for key in ("schema_results", "schematron_results"):
        out += (meta.get(key) or {}).get("messages") or []
    return out


CSIP = "{https://DILCIS.eu/XML/METS/CSIPExtensionMETS}"
METS = "{http://www.loc.gov/METS/}"
# Rules eark-validator 1.1.3 reports in error for a package that meets them, each accepted (as a
# warning, with this reason) only when the package is shown to meet the rule as written in the
# specification. Listed in docs/flows/archive.md.
SIP14_REASON = ("accepted: eark-validator 1.1.3 tests an unqualified @NOTETYPE, which the METS schema "
                "forbids; every CREATOR agent's note has a valid csip:NOTETYPE")


def _root_mets(package: Path):
    import zipfile

    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    if package.is_dir():
        data = (package / "METS.xml").read_bytes()
    else:
        with zipfile.ZipFile(package) as z:
            name = next(n for n in z.namelist() if n.count("/") == 1 and n.endswith("/METS.xml"))
            data = z.read(name)
    root = etree.fromstring(data, parser)
    if root.getroottree().docinfo.doctype:
        raise ValueError("METS.xml has a DOCTYPE")
    return root


def _sip14_met(package: Path) -> bool:
    try:
        root = _root_mets(package)
    except Exception:  # noqa: BLE001 - unreadable: the rule is not shown to be met
        return False
    notes = root.findall(f"{METS}metsHdr/{METS}agent[@ROLE='CREATOR']/{METS}note")
    return bool(notes) and all(n.get(CSIP + "NOTETYPE") in ("SOFTWARE VERSION", "IDENTIFICATIONCODE") for n in notes)


def verdict(report: dict, package: Path | None = None) -> dict:
    meta = report.get("metadata") or {}
    msgs = _messages(report)
    errors = [m for m in msgs if m.get("severity") == "Error"]
    warnings = [m for m in msgs if m.get("severity") == "Warn"]
    accepted = []
    if package is not None and any(m.get("rule_id") == "SIP14" for m in errors) and _sip14_met(package):
        accepted = [dict(m, message=f"{SIP14_REASON} ({m.get('message')})") for m in errors
                    if m.get("rule_id") == "SIP14"]
        errors = [m for m in errors if m.get("rule_id") != "SIP14"]
    warnings += accepted
    valid = ((report.get("structure") or {}).get("status") == "WellFormed"
             and (meta.get("schema_results") or {}).get("status") == "VALID"
             and ((meta.get("schematron_results") or {}).get("status") == "VALID" or accepted) and not errors)

    def short(m: dict) -> dict:
        return {"rule": str(m.get("rule_id") or ""), "message": str(m.get("message") or "")[:500],
                "location": str(m.get("location") or "")[:300]}

    return {"valid": valid, "errors": [short(m) for m in errors], "warnings": [short(m) for m in warnings]}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: run_eark_validator.py PACKAGE", file=sys.stderr)
        return 2
    _offline()
    unpack = tempfile.mkdtemp(prefix="eark-")
    tempfile.tempdir = unpack  # it unpacks archives under tempfile.gettempdir(): keep that ours
    try:
        from eark_validator.packages import PackageValidator
        from eark_validator.specifications.specification import SpecificationVersion

        report = PackageValidator(Path(argv[0]), SpecificationVersion("V2.1.0")).validation_report
        print(json.dumps(verdict(json.loads(report.model_dump_json()), Path(argv[0]))))
        return 0
    except Exception as e:  # noqa: BLE001 - it crashes on some malformed METS: that is a verdict too
        print(json.dumps({"valid": False, "errors": [{"rule": "validator", "message": f"eark-validator failed: "
                                                      f"{type(e).__name__}: {e}"[:500], "location": ""}],
                          "warnings": []}))
        return 0
    finally:
        tempfile.tempdir = None
        shutil.rmtree(unpack, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
