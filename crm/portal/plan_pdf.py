"""The treatment plan with its information as a PDF to keep (fpdf2). Pure: data in, bytes out.

With a Unicode font (DejaVu Sans) any of our scripts prints, Arabic shaped and right to
left through fpdf2's text shaping (uharfbuzz); without one, a core font and Latin-1 text,
as the visa letter does.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from crm.travel.letter import _latin1


@dataclass(frozen=True)
class PlanDocument:
    hospital_name: str
    title: str
    header: tuple[str, ...]
    table: tuple[tuple[str, str], ...]  # (what, amount); the last row is the total
    sections: tuple[tuple[str, tuple[str, ...]], ...]  # (heading, paragraphs)
    right_to_left: bool = False


def sections_of(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """A text of blocks (a heading line, then its lines; blank lines between blocks)."""
    sections = []
    for chunk in text.split("\n\n"):
        lines = [line for line in chunk.split("\n") if line.strip()]
        if lines:
            sections.append((lines[0], tuple(lines[1:])))
    return sections


def _can_shape() -> bool:
    return importlib.util.find_spec("uharfbuzz") is not None


def render_plan_pdf(doc: PlanDocument, *, font: Path | None = None, compress: bool = True) -> bytes:
    # fpdf2 subsets the font through fontTools, which logs every glyph at INFO
    logging.getLogger("fontTools.subset").setLevel(logging.WARNING)
    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_title(doc.title)
    pdf.set_author(doc.hospital_name)
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    if font is not None:
        pdf.add_font("Plan", "", str(font))
        family, clean = "Plan", (lambda text: text)
        if _can_shape():
            pdf.set_text_shaping(True, direction="rtl" if doc.right_to_left else "ltr")
    else:
        family, clean = "Helvetica", _latin1
    align = "R" if doc.right_to_left else "L"

    def line(text: str, size: float, height: float, gap: float = 0) -> None:
        pdf.set_font(family, size=size)
        pdf.multi_cell(0, height, clean(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if gap:
            pdf.ln(gap)

    line(doc.hospital_name, 15, 8)
    line(doc.title, 13, 7, 2)
    for text in doc.header:
        line(text, 10, 5)
    pdf.ln(3)
    _table(pdf, family, clean, doc)
    for heading, paragraphs in doc.sections:
        pdf.ln(3)
        if pdf.get_y() > pdf.page_break_trigger - 25:  # a heading never ends a page
            pdf.add_page()
        line(heading, 12, 6, 1)
        for paragraph in paragraphs:
            line(paragraph, 10, 5, 1)
    return bytes(pdf.output())


def _table(pdf: FPDF, family: str, clean, doc: PlanDocument) -> None:
    width = pdf.epw
    amount_width = 45
    for index, (what, amount) in enumerate(doc.table):
        pdf.set_font(family, size=11 if index == len(doc.table) - 1 else 10)
        cells = [(what, width - amount_width, "L"), (amount, amount_width, "R")]
        if doc.right_to_left:
            cells = [(amount, amount_width, "L"), (what, width - amount_width, "R")]
        for text, cell_width, cell_align in cells:
            pdf.cell(cell_width, 6, clean(text), border="B", align=cell_align)
        pdf.ln(6)
