"""E-ARK SIP 2.1 (CSIP 2.1.0 + SIP 2.1.0, which FGS Paketstruktur 2.0 is since 2023): the
metadata files of a package, written with lxml, and the checks on the Ladok documents that go
into it. The packaging itself (zip, checksums, parts) is ``brygga.flows.archive.packaging``.

A package holds, for one subject (a course instance whose study period has ended):

    <OBJID>/METS.xml                                   CSIP + SIP profile, agents, fileSec, structMap
    <OBJID>/metadata/descriptive/dc.xml                Dublin Core (access restriction when needed)
    <OBJID>/metadata/preservation/premis.xml           PREMIS 3: objects with SHA-256, events, agents
    <OBJID>/representations/rep1/METS.xml              the representation's own METS
    <OBJID>/representations/rep1/metadata/preservation/premis.xml
    <OBJID>/representations/rep1/data/*.xml            Ladok's own XML, as Ladok wrote it
    <OBJID>/schemas/ladok/*.xsd                        the Ladok XSDs the data follow (with their licence)
    <OBJID>/documentation/README.txt                   what the package is, its parts

Everything is deterministic: ids are uuid5 of fixed names under the OBJID, timestamps are the
package's ``created`` (kept in the store from the first build)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from brygga import xmlsafe
from brygga.paths import SCHEMAS
from mappings.base import Mapping, MappingKey
from mappings.registry import mapping

METS_NS = "http://www.loc.gov/METS/"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
CSIP_NS = "https://DILCIS.eu/XML/METS/CSIPExtensionMETS"
SIP_NS = "https://DILCIS.eu/XML/METS/SIPExtensionMETS"
PREMIS_NS = "http://www.loc.gov/premis/v3"
DC_NS = "http://purl.org/dc/elements/1.1/"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
RR = "{http://schemas.ladok.se/resultat}"
EX = "{http://schemas.ladok.se/examen}"
ATTESTERAD = "3"  # rr:ProcessStatus of an attested result

M = f"{{{METS_NS}}}"
P = f"{{{PREMIS_NS}}}"
XL = f"{{{XLINK_NS}}}"
CS = f"{{{CSIP_NS}}}"
XSI = f"{{{XSI_NS}}}"
METS_NSMAP = {"mets": METS_NS, "xlink": XLINK_NS, "xsi": XSI_NS, "csip": CSIP_NS, "sip": SIP_NS}
METS_SCHEMALOC = ("http://www.loc.gov/METS/ http://www.loc.gov/standards/mets/mets.xsd "
                  "http://www.w3.org/1999/xlink http://www.loc.gov/standards/mets/xlink.xsd "
                  "https://DILCIS.eu/XML/METS/CSIPExtensionMETS https://earkcsip.dilcis.eu/schema/DILCISExtensionMETS.xsd "
                  "https://DILCIS.eu/XML/METS/SIPExtensionMETS https://earksip.dilcis.eu/schema/DILCISExtensionSIPMETS.xsd")
SIP_PROFILE = "https://earksip.dilcis.eu/profile/E-ARK-SIP.xml"
CONTENT_CATEGORY = "Datasets"  # CSIP vocabulary (mets/@TYPE)
CONTENT_INFORMATION = "OTHER"
OTHER_CONTENT_INFORMATION = "Ladok3-XML"  # Ladok's own representations (schemas.ladok.se)
SOFTWARE = "Brygga"
SOFTWARE_VERSION = "1"
LOC = "http://id.loc.gov/vocabulary/preservation/"
EVENT_CODES = {"creation": "cre", "validation": "val", "message digest calculation": "mes"}
PRONOM = {"application/xml": "fmt/101", "text/xml": "fmt/101", "text/plain": "x-fmt/111"}
FORMAT_NAMES = {"application/xml": "Extensible Markup Language", "text/xml": "Extensible Markup Language",
                "text/plain": "Plain Text File"}


DESCRIPTIONS = {
    "kurstillfalle": "Studiedokumentation ur Ladok: kurstillfällets uppgifter, deltagare och registreringar, "
                     "attesterade resultat (Ladoks egna XML-representationer).",
    "examen": "Studiedokumentation ur Ladok: utfärdat examensbevis och studentens attesterade resultat "
              "(Ladoks egna XML-representationer).",
    "": "Studiedokumentation ur Ladok (Ladoks egna XML-representationer).",
}


@dataclass(frozen=True)
class PackageFile:
    """A file in the package: its path under the package root, size, SHA-256 (lower-case hex), type."""

    path: str
    size: int
    sha256: str
    mimetype: str = "application/xml"


@dataclass(frozen=True)
class PackageInfo:
    """What the metadata say about a package (or one part of it)."""

    objid: str
    label: str  # e.g. "Kurstillfälle SV296 10196 (HT2027)"
    created: dt.datetime
    subject_kind: str  # kurstillfalle
    subject_uid: str
    archival_creator: tuple[str, str]  # (name, identification code, e.g. organisationsnummer)
    submitter: tuple[str, str]
    submission_agreement: str | None = None
    period: tuple[str | None, str | None] = (None, None)  # the instance's study period
    protected: int = 0  # students with skyddade personuppgifter in the package
    part: int = 1
    parts: int = 1
    other_parts: tuple[str, ...] = ()  # the OBJIDs of the other parts
    validated: tuple[str, ...] = ()  # data files validated against the Ladok XSDs
    events: Sequence[tuple[str, str]] = field(default_factory=tuple)  # extra (type, detail) events


def _date(d: dt.datetime) -> str:
    return d.isoformat(timespec="seconds")


class _Ids:
    """Deterministic xml:IDs under the package's OBJID (an NCName: never starting with a digit)."""

    def __init__(self, objid: str):
        self.ns = uuid.uuid5(uuid.NAMESPACE_URL, "urn:brygga:sip:" + objid)

    def __call__(self, name: str) -> str:
        return "uuid-" + str(uuid.uuid5(self.ns, name)).upper()


def _xml(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@mapping
class SipV1(Mapping):
    key = MappingKey("arkiv", "sip", 1)
    description = "E-ARK SIP 2.1 / FGS 2.0 metadata (METS, PREMIS 3, DC) around Ladok's own XML"

    # ---------------------------------------------------------------- Ladok documents
    @staticmethod
    def ladok_schema() -> etree.XMLSchema:
        return xmlsafe.schema_from_files("ladok", (SCHEMAS / "ladok").glob("*.xsd"))

    def check_ladok(self, data: bytes, root_tag: str) -> etree._Element:
        """A Ladok reply that goes into the package: well-formed, no DTD, the expected document
        (``root_tag``, e.g. ``{http://schemas.ladok.se/resultat}ResultatLista``) and valid against
        the Ladok XSDs. Raises ``ValueError`` naming what is wrong."""
        root = xmlsafe.fromstring(data)
        if root.tag != root_tag:
            raise ValueError(f"expected {etree.QName(root_tag).localname}, got {etree.QName(root).localname}")
        schema = self.ladok_schema()
        if not schema.validate(root):
            err = schema.error_log.last_error
            raise ValueError(f"not valid against the Ladok XSDs: line {err.line if err else '?'}: "
                             f"{(err.message if err else '')[:200]}")
        return root

    def results_of_instance(self, data: bytes, instance_uid: str | None) -> list[etree._Element]:
        """The attested rr:Resultat (``rr:ProcessStatus`` 3) of a student's rr:ResultatLista, on one
        course instance (``instance_uid``; None: every instance), Ladok's own elements unchanged;
        the list is validated against the Ladok XSDs first."""
        root = self.check_ladok(data, RR + "ResultatLista")
        return [r for r in root.iterfind(RR + "Resultat")
                if (r.findtext(RR + "ProcessStatus") or "").strip() == ATTESTERAD
                and (instance_uid is None or (r.findtext(RR + "KurstillfalleUID") or "").strip() == instance_uid)]

    def degrees(self, data: bytes) -> tuple[int, list[tuple[str, str, str | None]]]:
        """An ex:UtfardatBevisLista page, validated: (how many certificates it lists, and the
        (bevis UID, student UID, utfärdandedatum) of each one to archive: not removed, with both UIDs)."""
        root = self.check_ladok(data, EX + "UtfardatBevisLista")
        listed = root.findall(EX + "UtfardatBevis")
        out = []
        for b in listed:
            uid = (b.findtext("{http://schemas.ladok.se}Uid") or "").strip()
            student = (b.findtext(EX + "StudentUID") or "").strip()
            if uid and student and (b.findtext(EX + "Borttaget") or "").strip() != "true":
                out.append((uid, student, (b.findtext(EX + "Utfardandedatum") or "").strip() or None))
        return len(listed), out

    def result_list(self, results: Sequence[etree._Element]) -> bytes:
        """One rr:ResultatLista of the given rr:Resultat (of several students), validated."""
        root = etree.Element(RR + "ResultatLista", nsmap={"rr": RR[1:-1], "base": "http://schemas.ladok.se"})
        root.extend(results)
        out = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        self.check_ladok(out, RR + "ResultatLista")
        return out

    # ---------------------------------------------------------------- descriptive metadata
    def dc(self, info: PackageInfo) -> bytes:
        root = etree.Element(f"{{{OAI_DC_NS}}}dc", nsmap={"oai_dc": OAI_DC_NS, "dc": DC_NS, "xsi": XSI_NS})
        root.set(XSI + "schemaLocation", f"{OAI_DC_NS} http://www.openarchives.org/OAI/2.0/oai_dc.xsd")
        values = [("title", info.label), ("creator", info.archival_creator[0]), ("publisher", info.submitter[0]),
                  ("identifier", info.objid), ("identifier", f"ladok:{info.subject_kind}:{info.subject_uid}"),
                  ("date", info.created.date().isoformat()), ("type", "Dataset"), ("format", "text/xml"),
                  ("language", "swe"), ("description", DESCRIPTIONS.get(info.subject_kind, DESCRIPTIONS[""]))]
        if info.period[0] or info.period[1]:
            values.append(("coverage", f"{info.period[0] or ''}/{info.period[1] or ''}"))
        if info.protected:
            values.append(("rights", f"Åtkomstbegränsning: paketet rör {info.protected} student(er) med skyddade "
                                     "personuppgifter (OSL 21 kap. 3 §). Ingen adress finns i paketet."))
        else:
            values.append(("rights", "Innehåller personuppgifter; sekretessprövning före utlämnande."))
        if info.parts > 1:
            values.append(("relation", f"Del {info.part} av {info.parts}"))
            values += [("relation", f"Annan del: {other}") for other in info.other_parts]
        for tag, value in values:
            etree.SubElement(root, f"{{{DC_NS}}}{tag}").text = value
        return _xml(root)

    def readme(self, info: PackageInfo, files: Sequence[PackageFile]) -> bytes:
        lines = [f"Paket {info.objid}", "", info.label,
                 f"Ladok: {info.subject_kind} {info.subject_uid}",
                 f"Skapat {_date(info.created)} av {SOFTWARE} (Ladok -> e-arkiv, E-ARK SIP 2.1 / FGS 2.0).", ""]
        if info.parts > 1:
            lines += [f"Detta är del {info.part} av {info.parts}. Övriga delar:", *[f"  {o}" for o in info.other_parts],
                      ""]
        if info.protected:
            lines += [f"Åtkomstbegränsning: {info.protected} student(er) har skyddade personuppgifter; de finns "
                      "med endast med Ladoks UID, utan namn, personnummer eller adress.", ""]
        lines += ["Datafiler (representations/rep1/data):", *[f"  {f.path}  {f.size} byte  sha256 {f.sha256}"
                                                           for f in files], ""]
        return "\n".join(lines).encode("utf-8")

    # ---------------------------------------------------------------- PREMIS 3
    def premis(self, info: PackageInfo, files: Sequence[PackageFile], *, representation: bool,
               validated: Sequence[str] = ()) -> bytes:
        """PREMIS for the package (``representation`` False: every file but METS.xml and this
        one) or for the representation (its data files): objects with SHA-256 fixity, the
        creation and validation events, their agent."""
        ids = _Ids(info.objid)
        root = etree.Element(P + "premis", nsmap={"premis": PREMIS_NS, "xsi": XSI_NS}, version="3.0")
        root.set(XSI + "schemaLocation", f"{PREMIS_NS} http://www.loc.gov/standards/premis/v3/premis.xsd")
        data = [f for f in files if "/data/" in f.path]
        rep = etree.SubElement(root, P + "object")
        rep.set(XSI + "type", "premis:representation")
        self._ident(rep, "objectIdentifier", ids("obj-rep1"))
        etree.SubElement(rep, P + "originalName").text = "rep1"
        for f in data:
            rel = etree.SubElement(rep, P + "relationship")
            self._term(rel, "relationshipType", "structural", "relationshipType", "str")
            self._term(rel, "relationshipSubType", "includes", "relationshipSubType", "inc")
            self._ident(rel, "relatedObjectIdentifier", ids("obj:" + f.path))
        events = [ids("ev-creation"), ids("ev-validation")]
        checked_paths = set(validated)
        for f in files:
            o = etree.SubElement(root, P + "object")
            o.set(XSI + "type", "premis:file")
            self._ident(o, "objectIdentifier", ids("obj:" + f.path))
            oc = etree.SubElement(o, P + "objectCharacteristics")
            etree.SubElement(oc, P + "compositionLevel").text = "0"
            fx = etree.SubElement(oc, P + "fixity")
            alg = etree.SubElement(fx, P + "messageDigestAlgorithm", authority="cryptographicHashFunctions",
                                   authorityURI=LOC + "cryptographicHashFunctions",
                                   valueURI=LOC + "cryptographicHashFunctions/sha256")
            alg.text = "SHA-256"
            etree.SubElement(fx, P + "messageDigest").text = f.sha256
            etree.SubElement(fx, P + "messageDigestOriginator").text = SOFTWARE
            etree.SubElement(oc, P + "size").text = str(f.size)
            fmt = etree.SubElement(oc, P + "format")
            fd = etree.SubElement(fmt, P + "formatDesignation")
            etree.SubElement(fd, P + "formatName").text = FORMAT_NAMES.get(f.mimetype, f.mimetype)
            if f.mimetype in PRONOM:
                fr = etree.SubElement(fmt, P + "formatRegistry")
                etree.SubElement(fr, P + "formatRegistryName").text = "PRONOM"
                etree.SubElement(fr, P + "formatRegistryKey").text = PRONOM[f.mimetype]
            etree.SubElement(o, P + "originalName").text = f.path
            for ev in events[:1] + (events[1:] if f.path in checked_paths else []):
                self._ident(o, "linkingEventIdentifier", ev)
        what = "representationens datafiler" if representation else "paketets filer"
        self._event(root, events[0], "creation", info, f"{what} skapade av {SOFTWARE} ur Ladok",
                    [ids("obj:" + f.path) for f in files])
        checked = [f for f in files if f.path in checked_paths]
        self._event(root, events[1], "validation", info,
                    f"{len(checked)} datafiler validerade mot Ladoks XSD:er (schemas/ladok)",
                    [ids("obj:" + f.path) for f in checked])
        agent = etree.SubElement(root, P + "agent")
        self._ident(agent, "agentIdentifier", ids("agent-software"))
        etree.SubElement(agent, P + "agentName").text = SOFTWARE
        self._term(agent, "agentType", "software", "agentType", "sof")
        etree.SubElement(agent, P + "agentVersion").text = SOFTWARE_VERSION
        if not representation:
            org = etree.SubElement(root, P + "agent")
            self._ident(org, "agentIdentifier", ids("agent-submitter"))
            etree.SubElement(org, P + "agentName").text = info.submitter[0]
            self._term(org, "agentType", "organization", "agentType", "org")
        return _xml(root)

    @staticmethod
    def _ident(parent: etree._Element, tag: str, value: str) -> None:
        el = etree.SubElement(parent, P + tag)
        etree.SubElement(el, P + tag + "Type").text = "local"
        etree.SubElement(el, P + tag + "Value").text = value

    @staticmethod
    def _term(parent: etree._Element, tag: str, text: str, vocabulary: str, code: str) -> None:
        el = etree.SubElement(parent, P + tag, authority=vocabulary, authorityURI=LOC + vocabulary,
                              valueURI=f"{LOC}{vocabulary}/{code}")
        el.text = text

    def _event(self, root: etree._Element, ident: str, kind: str, info: PackageInfo, detail: str,
               objects: list[str]) -> None:
        e = etree.SubElement(root, P + "event")
        self._ident(e, "eventIdentifier", ident)
        self._term(e, "eventType", kind, "eventType", EVENT_CODES[kind])
        etree.SubElement(e, P + "eventDateTime").text = _date(info.created)
        edi = etree.SubElement(e, P + "eventDetailInformation")
        etree.SubElement(edi, P + "eventDetail").text = detail
        eoi = etree.SubElement(e, P + "eventOutcomeInformation")
        self._term(eoi, "eventOutcome", "success", "eventOutcome", "suc")
        la = etree.SubElement(e, P + "linkingAgentIdentifier")
        etree.SubElement(la, P + "linkingAgentIdentifierType").text = "local"
        etree.SubElement(la, P + "linkingAgentIdentifierValue").text = _Ids(info.objid)("agent-software")
        etree.SubElement(la, P + "linkingAgentRole").text = "executing program"
        for oid in objects:
            lo = etree.SubElement(e, P + "linkingObjectIdentifier")
            etree.SubElement(lo, P + "linkingObjectIdentifierType").text = "local"
            etree.SubElement(lo, P + "linkingObjectIdentifierValue").text = oid
            etree.SubElement(lo, P + "linkingObjectRole").text = "outcome" if kind == "creation" else "source"

    # ---------------------------------------------------------------- METS
    def _mets(self, info: PackageInfo, objid: str, label: str, *, representation: bool) -> etree._Element:
        root = etree.Element(M + "mets", nsmap=METS_NSMAP)
        root.set("OBJID", objid)
        root.set("LABEL", label)
        root.set("TYPE", CONTENT_CATEGORY)
        root.set(CS + "CONTENTINFORMATIONTYPE", CONTENT_INFORMATION)
        root.set(CS + "OTHERCONTENTINFORMATIONTYPE", OTHER_CONTENT_INFORMATION)
        root.set("PROFILE", SIP_PROFILE)
        root.set(XSI + "schemaLocation", METS_SCHEMALOC)
        created = _date(info.created)
        hdr = etree.SubElement(root, M + "metsHdr", CREATEDATE=created, LASTMODDATE=created, RECORDSTATUS="NEW")
        hdr.set(CS + "OAISPACKAGETYPE", "SIP")
        agent = etree.SubElement(hdr, M + "agent", ROLE="CREATOR", TYPE="OTHER", OTHERTYPE="SOFTWARE")
        etree.SubElement(agent, M + "name").text = SOFTWARE
        note = etree.SubElement(agent, M + "note")
        note.set(CS + "NOTETYPE", "SOFTWARE VERSION")
        note.text = SOFTWARE_VERSION
        if not representation:
            # SIP's submitting agent: ROLE OTHER / OTHERROLE SUBMITTER (SIP15-20). ROLE CREATOR
            # (SIP16's example) would break CSIP12-13, which take every CREATOR agent for the software.
            for role, (name, code) in (("ARCHIVIST", info.archival_creator), ("SUBMITTER", info.submitter)):
                attrs = {"ROLE": role, "TYPE": "ORGANIZATION"} if role == "ARCHIVIST" else \
                    {"ROLE": "OTHER", "OTHERROLE": role, "TYPE": "ORGANIZATION"}
                org = etree.SubElement(hdr, M + "agent", attrs)
                etree.SubElement(org, M + "name").text = name
                note = etree.SubElement(org, M + "note")
                note.set(CS + "NOTETYPE", "IDENTIFICATIONCODE")
                note.text = code
            if info.submission_agreement:
                etree.SubElement(hdr, M + "altRecordID", TYPE="SUBMISSIONAGREEMENT").text = info.submission_agreement
        return root

    @staticmethod
    def _md_ref(parent: etree._Element, href: str, mdtype: str, f: PackageFile, created: str) -> etree._Element:
        return etree.SubElement(parent, M + "mdRef", {
            "LOCTYPE": "URL", XL + "type": "simple", XL + "href": href, "MDTYPE": mdtype, "MIMETYPE": f.mimetype,
            "SIZE": str(f.size), "CREATED": created, "CHECKSUM": f.sha256.upper(), "CHECKSUMTYPE": "SHA-256"})

    @staticmethod
    def _file(group: etree._Element, fid: str, href: str, f: PackageFile, created: str) -> None:
        el = etree.SubElement(group, M + "file", ID=fid, MIMETYPE=f.mimetype, SIZE=str(f.size), CREATED=created,
                              CHECKSUM=f.sha256.upper(), CHECKSUMTYPE="SHA-256")
        etree.SubElement(el, M + "FLocat", {"LOCTYPE": "URL", XL + "type": "simple", XL + "href": href})

    @staticmethod
    def _group(sec: etree._Element, gid: str, use: str) -> etree._Element:
        g = etree.SubElement(sec, M + "fileGrp", ID=gid, USE=use)
        g.set(CS + "CONTENTINFORMATIONTYPE", CONTENT_INFORMATION)
        g.set(CS + "OTHERCONTENTINFORMATIONTYPE", OTHER_CONTENT_INFORMATION)
        return g

    def representation_mets(self, info: PackageInfo, data: Sequence[PackageFile], premis: PackageFile) -> bytes:
        """``representations/rep1/METS.xml``; paths in ``data`` and ``premis`` are package paths."""
        ids, created, base = _Ids(info.objid), _date(info.created), "representations/rep1/"
        root = self._mets(info, "rep1", "rep1", representation=True)
        amd = etree.SubElement(root, M + "amdSec")
        dp = etree.SubElement(amd, M + "digiprovMD", ID=ids("rep1-digiprov"), STATUS="CURRENT")
        self._md_ref(dp, premis.path.removeprefix(base), "PREMIS", premis, created)
        sec = etree.SubElement(root, M + "fileSec", ID=ids("rep1-filesec"))
        group = self._group(sec, ids("rep1-grp-data"), "Data")
        for f in data:
            self._file(group, ids("rep1-file:" + f.path), f.path.removeprefix(base), f, created)
        sm = etree.SubElement(root, M + "structMap", ID=ids("rep1-structmap"), TYPE="PHYSICAL", LABEL="CSIP")
        top = etree.SubElement(sm, M + "div", ID=ids("rep1-div-root"), LABEL="rep1")
        etree.SubElement(top, M + "div", ID=ids("rep1-div-md"), LABEL="Metadata", ADMID=dp.get("ID"))
        d = etree.SubElement(top, M + "div", ID=ids("rep1-div-data"), LABEL="Data")
        etree.SubElement(d, M + "fptr", FILEID=group.get("ID"))
        return _xml(root)

    def package_mets(self, info: PackageInfo, *, dc: PackageFile, premis: PackageFile,
                     schemas: Sequence[PackageFile], documentation: Sequence[PackageFile],
                     rep_mets: PackageFile) -> bytes:
        """The root ``METS.xml``: dmdSec (DC), amdSec (PREMIS), a fileSec of every other file with
        size, type and SHA-256, and the CSIP structMap."""
        ids, created = _Ids(info.objid), _date(info.created)
        root = self._mets(info, info.objid, info.label, representation=False)
        dmd = etree.SubElement(root, M + "dmdSec", ID=ids("dmd-dc"), CREATED=created, STATUS="CURRENT")
        self._md_ref(dmd, dc.path, "DC", dc, created)
        amd = etree.SubElement(root, M + "amdSec")
        dp = etree.SubElement(amd, M + "digiprovMD", ID=ids("digiprov-premis"), STATUS="CURRENT")
        self._md_ref(dp, premis.path, "PREMIS", premis, created)
        sec = etree.SubElement(root, M + "fileSec", ID=ids("filesec"))
        g_doc = self._group(sec, ids("grp-doc"), "Documentation")
        for f in documentation:
            self._file(g_doc, ids("file:" + f.path), f.path, f, created)
        g_sch = self._group(sec, ids("grp-schemas"), "Schemas")
        for f in schemas:
            self._file(g_sch, ids("file:" + f.path), f.path, f, created)
        g_rep = self._group(sec, ids("grp-rep1"), "Representations/rep1")
        self._file(g_rep, ids("file:" + rep_mets.path), rep_mets.path, rep_mets, created)
        sm = etree.SubElement(root, M + "structMap", ID=ids("structmap"), TYPE="PHYSICAL", LABEL="CSIP")
        top = etree.SubElement(sm, M + "div", ID=ids("div-root"), LABEL=info.objid)
        etree.SubElement(top, M + "div", ID=ids("div-md"), LABEL="Metadata", ADMID=dp.get("ID"), DMDID=dmd.get("ID"))
        d = etree.SubElement(top, M + "div", ID=ids("div-schemas"), LABEL="Schemas")
        etree.SubElement(d, M + "fptr", FILEID=g_sch.get("ID"))
        d = etree.SubElement(top, M + "div", ID=ids("div-doc"), LABEL="Documentation")
        etree.SubElement(d, M + "fptr", FILEID=g_doc.get("ID"))
        reps = etree.SubElement(top, M + "div", ID=ids("div-reps"), LABEL="Representations")
        etree.SubElement(reps, M + "fptr", FILEID=g_rep.get("ID"))
        d = etree.SubElement(reps, M + "div", ID=ids("div-rep1"), LABEL="Representations/rep1")
        etree.SubElement(d, M + "mptr", {"LOCTYPE": "URL", XL + "type": "simple", XL + "href": rep_mets.path,
                                         XL + "title": g_rep.get("ID")})
        return _xml(root)
