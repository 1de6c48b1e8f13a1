"""What the archive simulator checks in a delivered package before it issues a receipt.

1. The zip itself: one top folder (the package), no absolute or ``..`` paths, bounded size.
2. Every file the root METS and each representation's METS list (``mets:file/mets:FLocat`` and
   the metadata files of ``mets:mdRef``):
   present, of the stated SIZE, with the stated SHA-256. eark-validator never checks checksums.
3. No file in the package that no METS lists (the METS files themselves aside).
4. Every XML data file (``representations/*/data/**.xml``) valid against the XSDs the package
   carries in ``schemas/``.
5. eark-validator (CSIP 2.1.0 + SIP), in its own virtualenv, on the zip: its report's errors;
   run only on a package that passed 1-4 (so it never reads a file with a DOCTYPE).

Each failed check is a reason ``(rule, text)``; texts are Swedish, as the receipt is read by an
archivist."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lxml import etree

from brygga import xmlsafe

METS = "{http://www.loc.gov/METS/}"
XLINK = "{http://www.w3.org/1999/xlink}href"
MAX_UNPACKED = 8 * 1024**3
CHUNK = 1024 * 1024


@dataclass
class Inspection:
    objid: str | None = None
    sha256: str = ""
    files: int = 0
    reasons: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def reject(self, rule: str, text: str) -> None:
        if len(self.reasons) < 200:
            self.reasons.append((rule, text))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def inspect(package: Path, workdir: Path, eark: list[str] | None) -> Inspection:
    """Check ``package`` (a zip) as described above; ``eark`` is the validator command (None: skip)."""
    out = Inspection(sha256=sha256_file(package))
    try:
        top = _unpack(package, workdir, out)
    except zipfile.BadZipFile as e:
        out.reject("paket.zip", f"Paketet är inte en läsbar zip-fil: {e}")
        return out
    if top is None:
        return out
    root_mets = top / "METS.xml"
    if not root_mets.is_file():
        out.reject("paket.mets", "Paketet saknar METS.xml i sin rotmapp")
        return out
    listed: set[Path] = {root_mets.resolve()}
    root = _mets(root_mets, out)
    if root is None:
        return out
    out.objid = root.get("OBJID")
    if out.objid != top.name:
        out.reject("paket.objid", f"Rotmappens namn {top.name!r} är inte paketets OBJID {out.objid!r}")
    _check_files(root_mets, root, top, listed, out)
    for mptr in root.iter(METS + "mptr"):
        href = mptr.get(XLINK) or ""
        rep = _inside(top, root_mets.parent, href)
        if rep is None or not rep.is_file():
            out.reject("mets.mptr", f"METS-pekaren {href!r} leder inte till en fil i paketet")
            continue
        listed.add(rep.resolve())
        rep_root = _mets(rep, out)
        if rep_root is not None:
            _check_files(rep, rep_root, top, listed, out)
    for path in sorted(p for p in top.rglob("*") if p.is_file()):
        if path.resolve() not in listed:
            out.reject("paket.oforteckad", f"Filen {path.relative_to(top).as_posix()!r} finns i paketet men i ingen METS")
    _validate_data(top, out)
    for path in sorted(top.rglob("metadata/**/*.xml")):  # eark-validator reads them with its own parser
        try:
            xmlsafe.fromstring(path.read_bytes())
        except xmlsafe.UnreadableXML as e:
            out.reject("metadata.xml", f"{path.relative_to(top).as_posix()}: {e}"[:500])
    if eark is not None and not out.reasons:  # only what passed the archive's own checks (and has no DOCTYPE)
        _eark(package, eark, out)
    return out


def _unpack(package: Path, workdir: Path, out: Inspection) -> Path | None:
    with zipfile.ZipFile(package) as z:
        infos = z.infolist()
        out.files = sum(1 for i in infos if not i.is_dir())
        tops = {PurePosixPath(i.filename).parts[0] for i in infos if i.filename}
        if len(tops) != 1:
            out.reject("paket.rot", f"Paketet ska ha en rotmapp, har {len(tops)}")
            return None
        if sum(i.file_size for i in infos) > MAX_UNPACKED:
            out.reject("paket.storlek", "Paketet är större än arkivet tar emot")
            return None
        for i in infos:
            p = PurePosixPath(i.filename)
            if p.is_absolute() or ".." in p.parts or "\\" in i.filename:
                out.reject("paket.sokvag", f"Otillåten sökväg i paketet: {i.filename[:200]!r}")
                return None
        z.extractall(workdir)
    return workdir / tops.pop()


def _mets(path: Path, out: Inspection) -> etree._Element | None:
    try:
        root = xmlsafe.fromstring(path.read_bytes())
    except xmlsafe.UnreadableXML as e:
        out.reject("mets.xml", f"{path.name} går inte att läsa: {e}"[:500])
        return None
    if root.tag != METS + "mets":
        out.reject("mets.xml", f"{path.name} är inget METS-dokument")
        return None
    return root


def _inside(top: Path, base: Path, href: str) -> Path | None:
    if not href or href.startswith(("/", "file:", "http:", "https:")):
        return None
    p = (base / href).resolve()
    return p if p.is_relative_to(top.resolve()) else None


def _check_files(mets_path: Path, root: etree._Element, top: Path, listed: set[Path], out: Inspection) -> None:
    where = mets_path.relative_to(top).as_posix()
    refs = [(f, (f.find(METS + "FLocat") if f.find(METS + "FLocat") is not None else f).get(XLINK))
            for f in root.iter(METS + "file")]
    refs += [(m, m.get(XLINK)) for m in root.iter(METS + "mdRef")]  # metadata files, checked alike
    for f, href in refs:
        path = _inside(top, mets_path.parent, href or "")
        if path is None or not path.is_file():
            out.reject("fil.saknas", f"{where}: filen {href!r} (ID {f.get('ID')}) finns inte i paketet")
            continue
        listed.add(path)
        name = path.relative_to(top.resolve()).as_posix()
        size = f.get("SIZE")
        if size is None or not size.isdigit() or int(size) != path.stat().st_size:
            out.reject("fil.storlek", f"{where}: {name}: storleken {size} stämmer inte ({path.stat().st_size} byte)")
        if (f.get("CHECKSUMTYPE") or "").upper() != "SHA-256":
            out.reject("fil.kontrollsumma", f"{where}: {name}: kontrollsumma av typ {f.get('CHECKSUMTYPE')!r}, "
                       "SHA-256 krävs")
        elif (f.get("CHECKSUM") or "").lower() != sha256_file(path):
            out.reject("fil.kontrollsumma", f"{where}: {name}: kontrollsumman stämmer inte (filen är ändrad)")


def _validate_data(top: Path, out: Inspection) -> None:
    data = sorted(p for p in top.glob("representations/*/data/**/*.xml") if p.is_file())
    if not data:
        return
    xsds = sorted((top / "schemas").rglob("*.xsd")) if (top / "schemas").is_dir() else []
    if not xsds:
        out.reject("schema.saknas", "Paketet har datafiler i XML men inga scheman i schemas/")
        return
    try:
        schema = _schema(xsds)
    except xmlsafe.UnsafeXML as e:
        out.reject("schema.osaker", f"Paketets scheman har en DOCTYPE: {e}"[:500])
        return
    except (xmlsafe.UnreadableXML, etree.XMLSchemaParseError, etree.XMLSyntaxError) as e:
        out.reject("schema.trasigt", f"Paketets scheman går inte att läsa: {e}"[:500])
        return
    for path in data:
        name = path.relative_to(top).as_posix()
        try:
            doc = xmlsafe.fromstring(path.read_bytes())
        except xmlsafe.UnreadableXML as e:
            out.reject("data.xml", f"{name}: {e}"[:500])
            continue
        if not schema.validate(doc):
            err = schema.error_log.last_error
            out.reject("data.schema", f"{name}: följer inte schemat: rad {err.line if err else '?'}: "
                       f"{(err.message if err else '')[:300]}")


class _OnlyThese(etree.Resolver):
    """Lets a schema load only the package's own XSDs (already read and found without a DOCTYPE):
    an xs:import or xs:include of any other file, or of the network, finds an empty document."""

    def __init__(self, allowed: set[Path]):
        super().__init__()
        self.allowed = allowed

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        url = str(system_url or "")
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)) if url.startswith("file:") else Path(url)
        try:
            path = path.resolve()
        except OSError:
            return self.resolve_string("", context)
        if path in self.allowed:
            return self.resolve_filename(str(path), context)
        return self.resolve_string("", context)


def _schema(xsds: list[Path]) -> etree.XMLSchema:
    """One schema over the package's XSDs (one per target namespace); never cached: each package
    brings its own. They are untrusted input: each is read by ``xmlsafe`` (a DOCTYPE is refused),
    and while the schema is compiled no other file can be loaded."""
    allowed = {f.resolve() for f in xsds}
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_OnlyThese(allowed))
    imports = []
    for f in xsds:
        tns = xmlsafe.fromstring(f.read_bytes()).get("targetNamespace")  # UnsafeXML for a DOCTYPE
        imports.append(f'<xs:import namespace="{tns}" schemaLocation="{f.resolve().as_uri()}"/>')
    wrapper = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:arkiv:paket">'
               + "".join(imports) + "</xs:schema>")
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser))


def _eark(package: Path, command: list[str], out: Inspection) -> None:
    try:
        run = subprocess.run([*command, str(package)], capture_output=True, text=True, timeout=600)
        verdict = json.loads(run.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        out.reject("eark.validator", f"eark-validator kunde inte köras: {e}"[:500])
        return
    for m in verdict.get("errors", []):
        out.reject(f"eark.{m.get('rule') or 'fel'}"[:100], f"{m.get('message')} ({m.get('location')})"[:1000])
    for m in verdict.get("warnings", []):
        out.warnings.append((f"eark.{m.get('rule') or 'varning'}"[:100], str(m.get("message"))[:500]))
    if not verdict.get("valid") and not verdict.get("errors"):
        out.reject("eark.ogiltigt", "eark-validator godkände inte paketet")
