"""CSV cells are quoted properly and never run as formulas in a spreadsheet."""

import csv
import io

from crm.reports.export import to_csv


def _read(text):
    return list(csv.reader(io.StringIO(text)))


def test_commas_quotes_and_newlines_survive_a_round_trip():
    text = to_csv(["a"], [['say "hi", then\nleave']])
    assert _read(text)[1] == ['say "hi", then\nleave']


def test_cells_that_would_run_as_formulas_are_prefixed_with_a_quote():
    text = to_csv(["a", "b", "c", "d"], [["=1+1", "+x", "-y", "@SUM(A1)"]])
    assert _read(text)[1] == ["'=1+1", "'+x", "'-y", "'@SUM(A1)"]


def test_numbers_stay_numbers_even_when_negative():
    assert _read(to_csv(["n"], [[-3]]))[1] == ["-3"]
