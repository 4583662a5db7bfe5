"""Charts are inline SVG that say every figure in words as well as in shapes."""

from xml.etree import ElementTree

from crm.reports.charts import bar_chart, funnel_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314 - our own output, not untrusted input


def _texts(svg: str) -> list[str]:
    return [t.text or "" for t in _parse(svg).iter(f"{SVG}text")]


def test_a_bar_chart_is_well_formed_svg_with_a_title_for_screen_readers():
    root = _parse(bar_chart("Sent", [("sms", 3), ("email", 1)]))
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Sent"
    assert "sms: 3" in root.find(f"{SVG}desc").text


def test_every_bar_carries_its_label_and_value_as_text():
    texts = _texts(bar_chart("Visits", [("enquiry", 12), ("lost", 2.5)], unit="h"))
    assert {"enquiry", "12 h", "lost", "2.5 h"} <= set(texts)


def test_neighbouring_bars_differ_by_pattern_not_only_by_colour():
    root = _parse(bar_chart("x", [("a", 1), ("b", 2)]))
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("stroke")]
    assert len(set(fills)) == 2 and all(f.startswith("url(#") for f in fills)


def test_labels_are_escaped_so_a_name_cannot_inject_markup():
    svg = bar_chart("<script>", [('A & "B" <i>', 1)])
    assert "<script>" not in svg
    assert 'A & "B" <i>' in _texts(svg)


def test_the_funnel_chart_writes_the_conversion_beside_each_count():
    funnel = {
        "stages": [
            {"stage": "enquiry", "reached": 4, "conversion": None},
            {"stage": "awaiting_mri", "reached": 1, "conversion": 0.25},
        ]
    }
    texts = _texts(funnel_chart(funnel))
    assert "awaiting mri" in texts
    assert "1 (25% of the stage before)" in texts


def test_an_empty_chart_still_draws():
    _parse(bar_chart("Nothing yet", []))
