"""Building E-ARK SIP packages as zips, streamed: data files are staged on disk as they come from
Ladok (SHA-256 taken while writing), then each package part is written file by file into its
zip, the checksum taken again while copying and compared, the metadata (``arkiv.sip`` mapping)
written last. Memory stays flat in the package size; the same content and ``created`` give the
same bytes (entries in a fixed order with fixed times), so a rebuild after a crash is the same
package.

A subject larger than ``max_part_bytes`` of data is split into parts (``<OBJID>-del<i>av<n>``),
each a full package with every schema and its own METS, which name the other parts."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from brygga.paths import SCHEMAS
from mappings.arkiv.sip import PackageFile, PackageInfo, SipV1

CHUNK = 1024 * 1024
NAMESPACE = uuid.UUID("0b6f7a52-2d1e-5c39-9a7e-5b7279676761")  # Brygga's archive packages
DATA = "representations/rep1/data/"


def package_id(kind: str, uid: str, content_sha256: str) -> str:
    """The package's OBJID: the same subject with the same content always gets the same id."""
    return f"brygga-{kind}-{uuid.uuid5(NAMESPACE, f'{kind}:{uid}:{content_sha256}')}"


class Integrity(RuntimeError):
    """A staged file changed between staging and packaging: the package is not written."""


@dataclass
class Staging:
    """Data files of one subject staged on disk (a private temporary directory of the task)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="brygga-arkiv-")))
    files: list[tuple[PackageFile, Path]] = field(default_factory=list)
    validated: list[str] = field(default_factory=list)
    data_bytes: int = 0

    def add(self, name: str, data: bytes, *, validated: bool = True, mimetype: str = "application/xml") -> PackageFile:
        """Stage ``data`` as ``representations/rep1/data/<name>``."""
        path = DATA + name
        disk = self.root / f"{len(self.files):06d}"
        disk.write_bytes(data)
        f = PackageFile(path, len(data), hashlib.sha256(data).hexdigest(), mimetype)
        self.files.append((f, disk))
        self.data_bytes += f.size
        if validated:
            self.validated.append(path)
        return f

    def content_sha256(self) -> str:
        """One digest over every data file (path and SHA-256): what the package id is made of."""
        h = hashlib.sha256()
        for f, _ in sorted(self.files, key=lambda x: x[0].path):
            h.update(f"{f.path}\t{f.sha256}\n".encode())
        return h.hexdigest()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Built:
    objid: str
    path: Path
    size: int
    files: int
    part: int
    parts: int
    sha256: str  # of the zip


def plan_parts(files: list[tuple[PackageFile, Path]], max_part_bytes: int) -> list[list[tuple[PackageFile, Path]]]:
    """Data files in their order, cut into parts of at most ``max_part_bytes`` (a larger file is
    a part of its own)."""
    parts: list[list[tuple[PackageFile, Path]]] = [[]]
    size = 0
    for item in files:
        if parts[-1] and size + item[0].size > max_part_bytes:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += item[0].size
    return parts


def part_ids(base: str, parts: int) -> list[str]:
    return [base] if parts == 1 else [f"{base}-del{i}av{parts}" for i in range(1, parts + 1)]


def _schema_files() -> list[tuple[str, Path]]:
    src = SCHEMAS / "ladok"
    return [(f"schemas/ladok/{p.name}", p) for p in sorted(src.iterdir()) if p.suffix == ".xsd" or p.name == "LICENSE"]


class _Zip:
    """A deterministic zip: entries in the order written, fixed time and mode."""

    def __init__(self, path: Path, top: str, when: dt.datetime):
        self.z = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self.top, self.count = top, 0
        local = when.astimezone(dt.UTC)
        self.when = (max(1980, local.year), local.month, local.day, local.hour, local.minute, local.second)
        self.dirs: set[str] = set()

    def _info(self, name: str, directory: bool = False) -> zipfile.ZipInfo:
        zi = zipfile.ZipInfo(name, date_time=self.when)
        zi.create_system = 3
        zi.external_attr = ((0o40755 << 16) | 0x10) if directory else (0o100644 << 16)
        zi.compress_type = zipfile.ZIP_STORED if directory else zipfile.ZIP_DEFLATED
        return zi

    def _parents(self, path: str) -> None:
        parts = f"{self.top}/{path}".split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i]) + "/"
            if d not in self.dirs:
                self.dirs.add(d)
                self.z.writestr(self._info(d, True), b"")

    def bytes(self, path: str, data: bytes, mimetype: str = "application/xml") -> PackageFile:
        self._parents(path)
        self.z.writestr(self._info(f"{self.top}/{path}"), data)
        self.count += 1
        return PackageFile(path, len(data), hashlib.sha256(data).hexdigest(), mimetype)

    def copy(self, path: str, source: Path, expect: str | None = None, mimetype: str = "application/xml") -> PackageFile:
        """Copy a file in, chunk by chunk, its SHA-256 taken while writing (and compared)."""
        self._parents(path)
        h, size = hashlib.sha256(), source.stat().st_size
        with open(source, "rb") as src, self.z.open(self._info(f"{self.top}/{path}"), "w",
                                                     force_zip64=size > 2**31) as dst:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                dst.write(chunk)
        digest = h.hexdigest()
        if expect is not None and digest != expect:
            raise Integrity(f"{path} changed after it was staged")
        self.count += 1
        return PackageFile(path, size, digest, mimetype)

    def close(self) -> None:
        self.z.close()


def build(sip: SipV1, info: PackageInfo, staging: Staging, out_dir: Path, *, max_part_bytes: int,
          crash: Callable[[str], None] | None = None) -> Iterator[Built]:
    """Write the package (or its parts) into ``out_dir``, one zip at a time; ``info.objid`` is the
    base id. ``crash(file)`` is called before each data file is written (tests kill there)."""
    parts = plan_parts(staging.files, max_part_bytes)
    ids = part_ids(info.objid, len(parts))
    for number, (objid, files) in enumerate(zip(ids, parts, strict=True), start=1):
        paths = {f.path for f, _ in files}
        part = replace(info, objid=objid, part=number, parts=len(parts),
                       other_parts=tuple(o for o in ids if o != objid),
                       validated=tuple(p for p in staging.validated if p in paths))
        path = out_dir / f"{objid}.zip"
        z = _Zip(path, objid, info.created)
        try:
            data = []
            for f, disk in files:
                if crash is not None:
                    crash(f.path)
                data.append(z.copy(f.path, disk, f.sha256, f.mimetype))
            schemas = [z.copy(name, src, mimetype="text/plain" if name.endswith("LICENSE") else "application/xml")
                       for name, src in _schema_files()]
            docs = [z.bytes("documentation/README.txt", sip.readme(part, data), "text/plain")]
            rep_premis = z.bytes("representations/rep1/metadata/preservation/premis.xml",
                                 sip.premis(part, data, representation=True, validated=part.validated))
            rep_mets = z.bytes("representations/rep1/METS.xml", sip.representation_mets(part, data, rep_premis))
            dc = z.bytes("metadata/descriptive/dc.xml", sip.dc(part))
            premis = z.bytes("metadata/preservation/premis.xml",
                             sip.premis(part, [*docs, *schemas, rep_premis, rep_mets, *data, dc],
                                        representation=False, validated=part.validated))
            z.bytes("METS.xml", sip.package_mets(part, dc=dc, premis=premis, schemas=schemas, documentation=docs,
                                                 rep_mets=rep_mets))
            count = z.count
        finally:
            z.close()
        yield Built(objid, path, path.stat().st_size, count, number, len(parts), _sha256(path))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
