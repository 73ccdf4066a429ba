"""Every output format honours the same contract (one check over the registry, as scikit-learn's
check_estimator does for estimators): machine formats keep every digit and the result's keys,
human formats show every chosen column and every note, and the same input gives the same bytes."""

import csv
import io
import json

import pytest

from planner.cli.grant import GRANT_FORMATS
from planner.grant.report import REPORT_FORMATS
from planner.report.output import FORMATS, HUMAN, OUTPUT_FORMATS, Column, render_record, render_rows

ROWS = [{"name": "a_1", "gpu_hours": 123456.789012345, "mfu": 0.3712, "gpu_hours_interval": [100000.5, 150000.25]},
        {"name": "b|2", "gpu_hours": 1.5e-3, "mfu": None, "gpu_hours_interval": None}]
COLUMNS = [Column("name", "run"), Column("gpu_hours", "GPU-hours", "hours"), Column("mfu", "MFU", "fraction")]
NOTES = ["a note with 50% & an_underscore"]


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_renders_rows_and_records_deterministically(name):
    for render in (lambda: render_rows(ROWS, COLUMNS, name, NOTES), lambda: render_record(ROWS[0], COLUMNS, name, NOTES)):
        first = render()
        assert first == render() and first.endswith("\n")


@pytest.mark.parametrize("name", [n for n, f in OUTPUT_FORMATS.items() if f.machine])
def test_machine_formats_keep_every_digit_and_key(name):
    text = render_rows(ROWS, COLUMNS, name, NOTES)
    if name == "json":
        assert json.loads(text) == ROWS
    else:
        parsed = list(csv.DictReader(io.StringIO(text)))
        assert float(parsed[0]["gpu_hours"]) == ROWS[0]["gpu_hours"]
        assert float(parsed[0]["gpu_hours_interval_low"]) == 100000.5  # a range is two columns
        assert parsed[1]["mfu"] == ""
    assert NOTES[0] not in text  # notes are for people; data files stay data


@pytest.mark.parametrize("name", HUMAN)
def test_human_formats_show_every_column_and_note(name):
    text = render_rows(ROWS, COLUMNS, name, NOTES).replace("\\%", "%").replace("\\_", "_")  # LaTeX's escapes aside
    for column in COLUMNS:
        assert column.header in text
    assert "123,457" in text and "37.1%" in text and "100,000–150,000" not in text  # rows show the value column only
    assert "50" in text and "underscore" in text
    record = render_record(ROWS[0], COLUMNS, name)
    assert "123,457 (100,000–150,000)" in record.replace(r"\_", "_")  # a record shows the range beside the value


def test_latex_escapes_and_markdown_keeps_its_table():
    latex = render_rows(ROWS, COLUMNS, "latex", NOTES)
    assert r"a\_1 & 123,457 & 37.1\%" in latex  # cells escaped
    assert "\n% a note with 50% & an_underscore\n" in latex  # notes are comment lines: nothing to escape
    markdown = render_rows(ROWS, COLUMNS, "markdown")
    assert r"b\|2" in markdown  # a pipe in a cell must not open a column


def test_grant_cli_offers_exactly_the_document_formats():
    assert set(GRANT_FORMATS) == set(REPORT_FORMATS)


def test_a_carriage_return_in_a_csv_cell_stays_in_its_row():
    import csv
    import io

    from planner.report.output import to_csv

    text = to_csv([{"name": "a\rb", "value": 1}, {"name": "c", "value": 2}])
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["name"] for r in rows] == ["a\rb", "c"] and text.count("\n") == 3
    assert '"a\rb"' in text
