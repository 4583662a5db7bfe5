"""A monthly statement as a PDF (fpdf2). Pure: the statement in, bytes out.

With a Unicode font (DejaVu Sans) an agency's name prints in any script, shaped through
uharfbuzz (the names only: references, dates and amounts need no shaping); without one,
a core font and Latin-1 text, as the plan's PDF does. An issued statement's PDF carries
its issue time as the creation date, so every read of it gives the same bytes; a draft is
marked as not issued.
"""

from __future__ import annotations

import importlib.util
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from crm.core.i18n import money_text
from crm.travel.letter import _latin1

DRAFT = "DRAFT - NOT ISSUED: this month can still change"
KINDS = {"accrued": "Accrued", "payable": "Payable", "reversed": "Reversed"}
REASONS = {
    "treatment": "treatment",
    "payable": "follow-up window over",
    "refund": "refund",
    "cancelled": "cancellation",
    "reattributed": "attribution changed",
}


def amount(minor: int, currency: str) -> str:
    return money_text(minor, currency, "en")


def _fixed(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _StatementPdf(FPDF):
    """Each page ends with what it is and where it stands: "<title> - page 2 of 5"."""

    footer_text = ""
    footer_family = "Helvetica"

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(self.footer_family, size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, f"{self.footer_text} - page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def render_statement_pdf(
    report: dict[str, Any],
    hospital_name: str,
    *,
    font: Path | None = None,
    compress: bool = True,
    now: datetime | None = None,
) -> bytes:
    # fpdf2 subsets the font through fontTools, which logs every glyph at INFO
    logging.getLogger("fontTools.subset").setLevel(logging.WARNING)
    issued = report["status"] == "issued"
    title = f"Commission statement {report['month']}"
    pdf = _StatementPdf(format="A4")
    pdf.set_compression(compress)
    pdf.set_title(title)
    pdf.set_author(hospital_name)
    stamp = report["issued_at"] if issued else now
    if stamp is not None:
        pdf.set_creation_date(_fixed(stamp))
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    shaping = False
    if font is not None:
        pdf.add_font("Statement", "", str(font))
        family, clean = "Statement", (lambda text: text)
        shaping = importlib.util.find_spec("uharfbuzz") is not None
    else:
        family, clean = "Helvetica", _latin1
    pdf.footer_family = family
    pdf.footer_text = clean(f"{title} - {report['agency_name']}")

    def line(text: str, size: float, height: float = 6, shaped: bool = False) -> None:
        pdf.set_font(family, size=size)
        if shaped:  # only the names: shaping every cell costs ~20x the time
            pdf.set_text_shaping(True)
        pdf.multi_cell(0, height, clean(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if shaped:
            pdf.set_text_shaping(False)

    line(hospital_name, 15, 8, shaped=shaping)
    line(title, 13, 7)
    line(f"Agency: {report['agency_name']}", 11, shaped=shaping)
    if issued:
        line(f"Issued {report['issued_at']:%d %B %Y %H:%M} UTC by {report['issued_by']}", 10)
    else:
        pdf.set_text_color(170, 20, 20)
        line(DRAFT, 12, 7)
        pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
    _lines(pdf, family, clean, report["lines"])
    pdf.ln(4)
    _totals(pdf, family, clean, report["totals"])
    return bytes(pdf.output())


def _row(pdf: FPDF, family: str, clean, cells: list[tuple[str, float, str]], size=10) -> None:
    pdf.set_font(family, size=size)
    for text, width, align in cells:
        pdf.cell(width, 6, clean(text), border="B", align=align)
    pdf.ln(6)


_WIDTHS = (30, 26, 38, 40)


def _heading(pdf: FPDF, family: str, clean) -> None:
    rest = pdf.epw - sum(_WIDTHS)
    names = ("Referral", "Date", "Kind", "Why")
    cells = [(name, width, "L") for name, width in zip(names, _WIDTHS, strict=True)]
    _row(pdf, family, clean, [*cells, ("Amount", rest, "R")], size=9)


def _lines(pdf: FPDF, family: str, clean, lines: list[dict[str, Any]]) -> None:
    widths, rest = _WIDTHS, pdf.epw - sum(_WIDTHS)
    _heading(pdf, family, clean)
    if not lines:
        _row(pdf, family, clean, [("No entries this month.", pdf.epw, "L")])
    for item in lines:
        if pdf.will_page_break(6):  # a new page starts with the column names again
            pdf.add_page()
            _heading(pdf, family, clean)
        _row(
            pdf,
            family,
            clean,
            [
                (item["reference"], widths[0], "L"),
                (f"{item['created_at']:%Y-%m-%d}", widths[1], "L"),
                (KINDS.get(item["kind"], item["kind"]), widths[2], "L"),
                (REASONS.get(item["reason"], item["reason"]), widths[3], "L"),
                (amount(item["amount_minor"], item["currency"]), rest, "R"),
            ],
        )


def _totals(pdf: FPDF, family: str, clean, totals: list[dict[str, Any]]) -> None:
    pdf.set_font(family, size=12)
    pdf.cell(
        0, 7, clean("Totals per currency (never converted)"), new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    label_width = pdf.epw - 60
    for total in totals:
        for kind, label in (
            ("accrued", "accrued"),
            ("reversed", "reversed"),
            ("net", "net (accrued less reversed)"),
            ("payable", "payable"),
        ):
            _row(
                pdf,
                family,
                clean,
                [
                    (f"{total['currency']} {label}", label_width, "L"),
                    (amount(total[f"{kind}_minor"], total["currency"]), 60, "R"),
                ],
                size=11 if kind == "net" else 10,
            )
