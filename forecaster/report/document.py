"""A tiny document model rendered two ways: Markdown (images linked) and self-contained HTML (images inline)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    """A section heading (level 1-3)."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """Plain text (escaped in HTML)."""

    text: str


@dataclass(frozen=True)
class Banner:
    """A prominent warning box (the stand-in label)."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A bullet list of plain sentences."""

    items: list[str]


@dataclass(frozen=True)
class Table:
    """A table of already-formatted cells (`html_id`: an id for the HTML element, e.g. the verdict table)."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    html_id: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG beside the report, linked in Markdown and embedded as a data URI in HTML."""

    path: Path
    alt: str
    caption: str = ""
    html_id: str = ""


@dataclass(frozen=True)
class Details:
    """A section collapsed by default in HTML (a heading and its blocks in Markdown)."""

    summary: str
    blocks: list[Block]


NUMERIC = re.compile(r"^[-+\u2212]?\d")
Block = Heading | Paragraph | Banner | Bullets | Table | Image | Details

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;max-width:1240px;margin:.6em auto;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.35em;border-bottom:2px solid #444;padding-bottom:.15em;margin:.2em 0 .4em}
h2{border-bottom:1px solid #ccc;margin-top:1.4em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.84em;max-width:100%}
.tablewrap{overflow-x:auto;max-width:100%}th,td{border:1px solid #ccc;padding:.2em .45em;text-align:left;
vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f0f0}td.n{text-align:right;white-space:nowrap}
#verdict{width:100%;font-size:.9em}#verdict td{text-align:left;white-space:normal}
#verdict td:first-child,#verdict td:nth-child(2){font-weight:bold;white-space:nowrap}
#headline{margin:.2em 0}#headline img{display:block;max-height:330px;width:auto;max-width:100%}
details{margin:.4em 0;border-top:1px solid #ddd;padding-top:.3em}summary{cursor:pointer;font-weight:bold;
font-size:1.1em;padding:.2em 0}.lead{margin:.2em 0 .4em;color:#333}
tr:nth-child(even) td{background:#fafafa}caption{caption-side:top;text-align:left;color:#555;padding:.2em 0}
.banner{background:#fde0dc;border:2px solid #b00000;color:#7a0000;padding:.4em .8em;font-weight:bold;margin:.5em 0;
font-size:.92em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:.9em}
li{margin:.25em 0}
"""

IMAGES_LOADED_SCRIPT = """
<script>
(function(){
  function bottom(id){ var e=document.getElementById(id); return e ? Math.ceil(e.getBoundingClientRect().bottom) : -1; }
  function report(){
    var imgs=document.images, ok=0;
    for (var i=0;i<imgs.length;i++){ if (imgs[i].complete && imgs[i].naturalWidth>0) ok++; }
    document.body.dataset.imagesLoaded = ok + "/" + imgs.length;
    var root=document.documentElement, facts={viewportWidth: window.innerWidth,
      viewportHeight: window.innerHeight, scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
      headlineBottom: bottom("headline"), verdictBottom: bottom("verdict")};
    var details=document.querySelectorAll("details");
    for (var j=0;j<details.length;j++){ details[j].open=true; }
    facts.scrollWidthOpen=root.scrollWidth;  /* every section opened: still no wider than the page */
    for (var k=0;k<details.length;k++){ details[k].open=false; }
    document.body.dataset.layout = JSON.stringify(facts);
  }
  if (document.readyState === "complete") { report(); } else { window.addEventListener("load", report); }
})();
</script>
"""


def flatten(blocks: list[Block]) -> list[Block]:
    """Every block, with the contents of Details in place."""
    out: list[Block] = []
    for block in blocks:
        out += flatten(block.blocks) if isinstance(block, Details) else [block]
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block]) -> str:
    """The report as Markdown; images are linked by file name (they sit beside report.md)."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Banner):
            parts.append(f"> **WARNING: {block.text}**")
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Details):
            parts.append(f"## {block.summary}\n\n" + render_markdown(block.blocks).rstrip("\n"))
        elif isinstance(block, Table):
            lines = [f"*{block.caption}*", ""] if block.caption else []
            lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            lines.append("|" + "|".join("---" for _ in block.header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            parts.append("\n".join(lines))
        else:
            caption = f"\n\n*{block.caption}*" if block.caption else ""
            parts.append(f"![{block.alt}]({block.path.name}){caption}")
    return "\n\n".join(parts) + "\n"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html_table(block: Table) -> str:
    esc = html.escape
    caption = f"<caption>{esc(block.caption)}</caption>" if block.caption else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in block.header)
    body = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in block.rows)
    ident = f' id="{esc(block.html_id)}"' if block.html_id else ""
    return (
        f'<div class="tablewrap"><table{ident}>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _html_cell(text: str) -> str:
    numeric = NUMERIC.match(text) is not None
    return f'<td class="n">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def _html_block(block: Block) -> str:
    esc = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}>{esc(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{esc(block.text)}</p>"
    if isinstance(block, Banner):
        return f'<div class="banner">WARNING: {esc(block.text)}</div>'
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _html_table(block)
    return _html_container(block)


def _html_container(block: Details | Image) -> str:
    esc = html.escape
    if isinstance(block, Details):
        inner = "\n".join(_html_block(b) for b in block.blocks)
        return f"<details><summary>{esc(block.summary)}</summary>\n{inner}\n</details>"
    caption = f"<figcaption>{esc(block.caption)}</figcaption>" if block.caption else ""
    ident = f' id="{esc(block.html_id)}"' if block.html_id else ""
    return f'<figure{ident}><img src="{_data_uri(block.path)}" alt="{esc(block.alt)}">{caption}</figure>'


def render_html(blocks: list[Block], title: str) -> str:
    """The report as ONE self-contained HTML file: inline CSS, PNGs as base64 data URIs, no external fetch."""
    body = "\n".join(_html_block(block) for block in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n{IMAGES_LOADED_SCRIPT}</body></html>\n"
    )
