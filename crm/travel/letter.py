"""The visa invitation letter as a PDF (fpdf2). Pure: data in, bytes out."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

# A Unicode font for names in any script; fpdf2's core fonts only know Latin-1.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/local/share/fonts/DejaVuSans.ttf"),
    Path("/Library/Fonts/DejaVuSans.ttf"),
)


def unicode_font() -> Path | None:
    return next((path for path in FONT_CANDIDATES if path.is_file()), None)


@dataclass(frozen=True)
class VisaLetter:
    reference: str
    issued_on: date
    patient_name: str
    patient_date_of_birth: date | None
    passport_country: str
    arrival_date: date
    departure_date: date
    admission_date: date
    hospital_name: str
    hospital_phone: str
    procedure_name: str
    companion_name: str | None
    companion_passport_country: str | None


def _latin1(text: str) -> str:
    """What a core font can print: accents folded, anything else as '?'."""
    folded = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return kept.encode("latin-1", "replace").decode("latin-1")


def _paragraphs(letter: VisaLetter) -> list[str]:
    born = f", born {letter.patient_date_of_birth:%d %B %Y}" if letter.patient_date_of_birth else ""
    stay = (
        f"from {letter.arrival_date:%d %B %Y} to {letter.departure_date:%d %B %Y}, "
        f"with admission to hospital on {letter.admission_date:%d %B %Y}"
    )
    paragraphs = [
        "To the consular officer concerned,",
        f"We confirm that {letter.patient_name}{born}, a citizen of {letter.passport_country}, "
        f"is invited to {letter.hospital_name} for medical treatment ({letter.procedure_name}).",
        f"The planned stay is {stay}. The treatment has been planned and accepted, and the "
        "patient's accommodation and transfers during the stay have been arranged.",
    ]
    if letter.companion_name:
        country = letter.companion_passport_country or "-"
        paragraphs.append(
            f"The patient will be accompanied by {letter.companion_name} "
            f"(passport country {country}), whose presence we kindly ask you to allow "
            "for the same period."
        )
    paragraphs.append(
        f"For any question about this invitation please contact us on {letter.hospital_phone}, "
        f"quoting the reference {letter.reference}."
    )
    paragraphs.append(f"Yours faithfully,\n{letter.hospital_name}\nInternational Patient Office")
    return paragraphs


def render_visa_letter(
    letter: VisaLetter, *, font: Path | None = None, compress: bool = True
) -> bytes:
    """A one-page A4 letter. With no Unicode `font`, a core font and Latin-1 text."""
    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_title(f"Invitation letter {letter.reference}")
    pdf.set_author(letter.hospital_name)
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    if font is not None:
        pdf.add_font("Letter", "", str(font))
        family, clean = "Letter", (lambda text: text)
    else:
        family, clean = "Helvetica", _latin1
    pdf.set_font(family, size=16)
    pdf.cell(0, 10, clean(letter.hospital_name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(family, size=10)
    pdf.cell(
        0,
        6,
        clean(f"Reference {letter.reference} - {letter.issued_on:%d %B %Y}"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(6)
    pdf.set_font(family, size=13)
    pdf.cell(0, 8, "Invitation letter for a medical visa", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font(family, size=11)
    for paragraph in _paragraphs(letter):
        pdf.multi_cell(0, 6, clean(paragraph), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)
    return bytes(pdf.output())
