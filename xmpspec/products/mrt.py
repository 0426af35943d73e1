"""CDS/AAS machine-readable table text: limits in the byte-by-byte description,
wrapped explanations (:func:`_mrt_text`, from ``ascii.mrt``).
"""

from __future__ import annotations

import re

import numpy as np
from astropy.table import Table

from ..config import Config, get_active_config
from .papertable import PaperTable

_COORD_PARTS = ("RAh", "RAm", "RAs", "DEd", "DEm", "DEs")
_BBB_ROW = re.compile(r"^(?P<head>\s*(?:\d+\s*-\s*)?\d+\s+(?P<fmt>[AIFE][\d.]+)\s+\S+\s+"
                      r"(?P<label>\S+)\s+)(?P<descr>.*)$")


def _mrt_limits(col) -> str:
    """``[min/max]`` of a numeric MRT column, written with the column's own format."""
    if col.name in _COORD_PARTS or col.dtype.kind not in "iuf":
        return ""
    vals = np.ma.compressed(np.ma.asarray(col))
    if vals.size == 0:
        return ""
    lo, hi = vals.min(), vals.max()
    if col.dtype.kind in "iu":
        text = [str(int(lo)), str(int(hi))]
    else:
        fmt = col.format or ".6g"
        fmt = fmt.lstrip("0") if fmt.startswith("0") else fmt
        text = [format(float(lo), fmt).strip(), format(float(hi), fmt).strip()]
    return f"[{text[0]}]" if text[0] == text[1] else f"[{text[0]}/{text[1]}]"


def _mrt_text(mrt: Table, table: PaperTable, config: Config | None = None) -> str:
    """The MRT file of ``mrt`` written by astropy's ``ascii.mrt`` writer, completed.

    Title and Authors come from ``[tables] title`` / ``authors`` (the title
    defaults to the table caption), the ``Table:`` line is the caption, and
    the limits in the byte-by-byte description are the minimum and maximum
    as written in the data (astropy rounds them to two decimals
    regardless of the column format).
    """
    import io
    import textwrap
    cfg = config if config is not None else get_active_config()
    title = str(cfg.get("tables.title", "") or "").strip() or table.caption
    authors = str(cfg.get("tables.authors", "") or "").strip()
    from ..tableio import ascii_table
    buf = io.StringIO()
    ascii_table(mrt).write(buf, format="ascii.mrt")  # MRT is ASCII: names transliterated
    lines = buf.getvalue().split("\n")
    out: list[str] = []
    i = 0
    in_bbb = False
    rules = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Title:"):
            out.append(f"Title: {title}")
        elif line.startswith("Authors:"):
            out.append(f"Authors: {authors}".rstrip())
        elif line.startswith("Table:"):
            out.append(f"Table: {table.caption}")
        elif line.startswith("Byte-by-byte Description of file:"):
            out.append(f"Byte-by-byte Description of file: {table.name}.mrt")
            in_bbb = True
        elif in_bbb and line.startswith("-" * 10):
            rules += 1
            out.append(line)
            if rules == 3:
                in_bbb = False
        elif in_bbb and rules == 2 and (m := _BBB_ROW.match(line)):
            descr = [m.group("descr").strip()]
            while i + 1 < len(lines) and lines[i + 1].startswith(" ") \
                    and not _BBB_ROW.match(lines[i + 1]):
                i += 1
                descr.append(lines[i].strip())
            text = " ".join(descr)
            label = m.group("label")
            fmt = m.group("fmt")
            if label in mrt.colnames:
                text = re.sub(r"^\[[^\]]*\]", "", text)
                text = _mrt_limits(mrt[label]) + text
                cf = mrt[label].format or ""
                if fmt.startswith("E") and cf.endswith("e"):
                    width = fmt[1:].split(".")[0]
                    fmt = f"E{width}.{cf.strip('.e') or 0}"
            head = m.group("head")
            head = head.replace(m.group("fmt"), fmt.ljust(len(m.group("fmt"))), 1)
            indent = " " * len(head)
            wrapped = textwrap.wrap(text, width=max(80 - len(head), 30)) or [""]
            # a continuation line must not start with a digit (it would read as a column)
            merged: list[str] = []
            for w in wrapped:
                if merged and w[:1].isdigit():
                    merged[-1] += " " + w
                else:
                    merged.append(w)
            out.append(head + merged[0])
            out += [indent + w for w in merged[1:]]
        else:
            out.append(line)
        i += 1
    return "\n".join(out)
