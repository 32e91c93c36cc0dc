"""Content-addressed storage of case files (issue 17).

Each file is stored once under its SHA-256: ``<root>/ab/cdef…``. An upload is streamed in chunks to a temporary
file in the root (same file system), hashed and counted as it goes, fsync'd, then renamed to its final name, so a
reader never sees a half-written file and an interrupted upload leaves only a ``.part`` file that :meth:`gc`
removes. The database row that references a file is written after the file (``engine.usecases.files``);
``bangban files gc`` removes files no row references once they are older than a grace period.

Types are decided by content, never by the name: PDF, JPEG and PNG by their signature (``filetype``); DOCX, XLSX
and OFD are zip containers told apart by the names in the zip's central directory — nothing is ever unpacked, so a
zip bomb costs nothing. The name's extension must agree with the content. Names are sanitised for display and never
used as paths. Several server processes may share the root (a shared mount when they run on several machines):
renames are atomic and two uploads of the same bytes end with the same file.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import filetype

from .config import Settings
from .errors import InvalidInput, TooLarge

CHUNK = 64 * 1024
HEAD = 8 * 1024
MB = 1024 * 1024
NAME_LIMIT = 100


@dataclass(frozen=True)
class Kind:
    code: str
    content_type: str
    extensions: tuple[str, ...]
    label: str
    previewable: bool = False


KINDS = {k.code: k for k in (
    Kind("pdf", "application/pdf", (".pdf",), "PDF 文档", True),
    Kind("jpeg", "image/jpeg", (".jpg", ".jpeg"), "图片（JPG）", True),
    Kind("png", "image/png", (".png",), "图片（PNG）", True),
    Kind("ofd", "application/ofd", (".ofd",), "OFD 版式文档"),
    Kind("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",), "文字处理文档（DOCX）"),
    Kind("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",), "电子表格（XLSX）"),
)}
ALLOWED_TEXT = "PDF、JPG、PNG、OFD、DOCX、XLSX"
BY_TYPE = {k.content_type: k for k in KINDS.values()}


@dataclass(frozen=True)
class Limits:
    """Per file and per case, in bytes (``BANGBAN_FILE_MAX_MB``, ``BANGBAN_CASE_FILES_MAX_MB``)."""

    file_bytes: int = 20 * MB
    case_bytes: int = 500 * MB

    @classmethod
    def from_env(cls) -> "Limits":
        def mb(name: str, default: int) -> int:
            raw = os.environ.get(name, "").strip()
            return int(raw) * MB if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 100_000 else default
        return cls(mb("BANGBAN_FILE_MAX_MB", cls.file_bytes), mb("BANGBAN_CASE_FILES_MAX_MB", cls.case_bytes))


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    kind: Kind
    name: str


def size_text(n: int) -> str:
    if n >= MB:
        return f"{n / MB:.1f} MB".replace(".0 MB", " MB")
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} 字节"


def clean_name(raw) -> str:
    """A display name for an uploaded file: NFC, no control or format characters, at most 100 characters (the
    extension kept). A name with a path in it (``/``, ``\\``, ``..``) is refused: browsers send a bare name."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("请选择要上传的文件（文件名为空）", {"file": "文件名为空"})
    name = unicodedata.normalize("NFC", raw).strip()
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise InvalidInput("文件名不能包含路径（如 “/”“\\”“..”），请只上传文件本身", {"file": "文件名含路径"})
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")).strip(" .")
    if not name:
        raise InvalidInput("文件名无效，请改名后重新上传", {"file": "文件名无效"})
    if len(name) > NAME_LIMIT:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        name = (stem if ext else name)[:NAME_LIMIT - len(ext) - 1].rstrip(" .") + ("." + ext if ext else "")
    return name


def detect(head: bytes, path: Path) -> Kind | None:
    """The kind of a stored file from its content, or None if it is none of the allowed kinds."""
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:      # the central directory only: nothing is decompressed
                names = {n.lower() for n in z.namelist()}
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
        if "[content_types].xml" in names and "word/document.xml" in names:
            return KINDS["docx"]
        if "[content_types].xml" in names and "xl/workbook.xml" in names:
            return KINDS["xlsx"]
        if "ofd.xml" in names:
            return KINDS["ofd"]
        return None
    guess = filetype.guess(head)
    if guess is None:
        return None
    return {"application/pdf": KINDS["pdf"], "image/jpeg": KINDS["jpeg"], "image/png": KINDS["png"]}.get(guess.mime)


class FileStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def from_env(cls) -> "FileStore":
        return cls(Settings.from_env().files_dir)

    def path_of(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256[2:]

    def put(self, stream, filename: str, max_bytes: int, too_large: str) -> Stored:
        """Stream ``stream`` (anything with ``read(n)``) into the store. Refused (and nothing left behind): more
        than ``max_bytes`` (``too_large`` is the message), empty, a type not allowed, an extension that does not
        match the content."""
        name = clean_name(filename)
        ext = os.path.splitext(name)[1].lower()
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".upload-{secrets.token_hex(8)}.part"
        digest, size, head = hashlib.sha256(), 0, b""
        try:
            with open(tmp, "xb") as out:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(too_large)
                    if len(head) < HEAD:
                        head += chunk[:HEAD - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise InvalidInput("上传的文件是空的（0 字节），请选择正确的文件", {"file": "空文件"})
            kind = detect(head, tmp)
            if kind is None:
                raise InvalidInput(f"不支持此文件类型（按文件内容判断），只能上传 {ALLOWED_TEXT} 文件", {"file": "类型不允许"})
            if ext not in kind.extensions:
                raise InvalidInput(f"文件扩展名与内容不符：内容是{kind.label}，扩展名应为 {'/'.join(kind.extensions)}",
                                   {"file": "扩展名与内容不符"})
            sha = digest.hexdigest()
            final = self.path_of(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)            # the same bytes uploaded twice end as the same file
            _fsync_dir(final.parent)
            return Stored(sha, size, kind, name)
        finally:
            tmp.unlink(missing_ok=True)

    def open(self, sha256: str):
        return open(self.path_of(sha256), "rb")

    def problem(self, sha256: str, size: int) -> str | None:
        """What is wrong with a stored file (missing, another size, other content), or None."""
        try:
            path = self.path_of(sha256)
        except ValueError:
            return "记录的哈希格式不对"
        if not path.is_file():
            return "文件在存储目录中不存在（被删除或移走）"
        if path.stat().st_size != size:
            return "文件大小与上传时不同（文件被改动）"
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK * 4):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            return "文件内容与上传时的哈希不符（文件被改动）"
        return None

    def gc(self, referenced: set[str], grace_seconds: float, dry_run: bool = False) -> list[str]:
        """Remove stored files no row references and abandoned ``.part`` files, each only once it is older than
        ``grace_seconds`` (an upload writes its file before its row). Returns what was (or would be) removed,
        relative to the root."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - grace_seconds
        removed = []
        candidates = list(self.root.glob(".upload-*.part"))
        for sub in self.root.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                candidates += [p for p in sub.iterdir() if p.is_file() and sub.name + p.name not in referenced]
        for path in sorted(candidates):
            try:
                if path.stat().st_mtime > cutoff:
                    continue
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:
                continue
            removed.append(str(path.relative_to(self.root)))
        return removed


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
