"""A dossier with its files (issue 17): ``bangban audit export CASE -o x.zip --with-files`` writes a zip holding
``dossier.json`` (the ordinary dossier) and ``files/<sha256>`` for every file an upload event of the case names;
``bangban audit verify --file x.zip`` checks the dossier as usual and then every file against its event's hash and
size, offline. A member is read only after its declared size matched the recorded one, so a doctored zip cannot
make the check inflate more than the case's own files."""
from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

from .filestore import CHUNK, FileStore

DOSSIER = "dossier.json"


def uploads(dossier: dict) -> list[dict]:
    """The ``file_uploaded`` events of a dossier: seq, sha256, size and a label (item, material, version)."""
    out = []
    for e in dossier.get("events") or []:
        if isinstance(e, dict) and e.get("type") == "file_uploaded" and isinstance(e.get("payload"), dict):
            p = e["payload"]
            out.append({"seq": e.get("seq"), "sha256": str(p.get("sha256")), "size": p.get("size"),
                        "label": f"{p.get('item_name') or ''}「{p.get('material')}」第 {p.get('version')} 版"})
    return out


def write_zip(dossier: dict, store: FileStore, output: str) -> int:
    """Write the dossier and its files to ``output``; returns the number of files. A file missing from the store
    is an error (Chinese message) before anything is written."""
    wanted = {u["sha256"]: u for u in uploads(dossier)}
    for sha, u in wanted.items():
        problem = store.problem(sha, u["size"])
        if problem:
            raise ValueError(f"材料文件{u['label']}：{problem}，不能导出")
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(DOSSIER, json.dumps(dossier, ensure_ascii=False))
        for sha in sorted(wanted):
            with store.open(sha) as src, z.open(f"files/{sha}", "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    return len(wanted)


def read_zip(path: str) -> tuple[dict | None, list[str]]:
    """The dossier of a zip export and what is wrong with its files (each a Chinese line)."""
    problems: list[str] = []
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return None, ["档案压缩包已损坏，无法打开"]
    with z:
        try:
            info = z.getinfo(DOSSIER)
            if info.file_size > 512 * 1024 * 1024:
                return None, ["档案压缩包中的 dossier.json 过大"]
            dossier = json.loads(z.read(info).decode("utf-8"))
        except KeyError:
            return None, ["档案压缩包中没有 dossier.json"]
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile):
            return None, ["档案压缩包中的 dossier.json 已损坏"]
        for u in uploads(dossier):
            name = f"files/{u['sha256']}"
            try:
                member = z.getinfo(name)
            except KeyError:
                problems.append(f"第 {u['seq']} 条事件的材料文件{u['label']}不在档案中")
                continue
            if member.file_size != u["size"]:
                problems.append(f"第 {u['seq']} 条事件的材料文件{u['label']}大小与上传时不同（文件被改动）")
                continue
            digest = hashlib.sha256()
            try:
                with z.open(member) as fh:
                    while chunk := fh.read(CHUNK):
                        digest.update(chunk)
            except (zipfile.BadZipFile, OSError, EOFError):
                problems.append(f"第 {u['seq']} 条事件的材料文件{u['label']}在档案中已损坏")
                continue
            if digest.hexdigest() != u["sha256"]:
                problems.append(f"第 {u['seq']} 条事件的材料文件{u['label']}内容与上传时的哈希不符（文件被改动）")
    return dossier, problems
