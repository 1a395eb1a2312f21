"""Captions of a folder of videos or pictures: a sidecar .txt beside each file, or one manifest.

A manifest is a .csv with `path` and `caption` columns or a .jsonl of
{"path": ..., "caption": ...} objects; paths are relative to the data folder.
Whitespace runs (newlines included) become single spaces.
"""

import csv
import json
import os
from pathlib import Path

from ..errors import VidiffError


class ManifestError(VidiffError, ValueError):
    """A manifest that cannot be used at all (as opposed to one bad line in it)."""


def clean(text):
    return " ".join(text.split())


def sidecar_caption(path):
    """The caption in clip.txt beside clip.mp4, or None when there is no such file."""
    txt = Path(path).with_suffix(".txt")
    if not txt.is_file():
        return None
    return clean(txt.read_text(encoding="utf-8", errors="replace"))


def read_manifest(manifest, root):
    """({absolute path: caption}, [(where, reason)] for lines that could not be read)."""
    manifest, root = Path(manifest), Path(root)
    if not manifest.is_file():
        raise ManifestError(f"no such caption manifest: {manifest}")
    suffix = manifest.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ManifestError(f"caption manifest must be .csv or .jsonl, got {manifest}")
    captions, bad = {}, []
    with open(manifest, encoding="utf-8-sig", newline="") as f:
        if suffix == ".csv":
            reader = csv.DictReader(f)
            if not {"path", "caption"} <= set(reader.fieldnames or ()):
                raise ManifestError(f"{manifest} needs 'path' and 'caption' columns, has {reader.fieldnames}")
            rows = ((reader.line_num, row) for row in reader)
        else:
            rows = ((n, _json_row(line)) for n, line in enumerate(f, 1) if line.strip())
        for n, row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("path"), str) or row.get("caption") is None:
                bad.append((Path(f"{manifest}:{n}"), "bad manifest line: needs a path and a caption"))
                continue
            captions[Path(os.path.abspath(root / row["path"]))] = clean(str(row["caption"]))
    return captions, bad


def _json_row(line):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None
