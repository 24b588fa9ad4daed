"""The annual report in the shape of the US Trafficking in Persons questionnaire, read only
from a published release (so every number in it went through disclosure control): pure,
no I/O but the files it is asked to write.

Each question is answered by one table of the release, shown as a two-way view: its first
dimension down the rows, its second across the columns, every other dimension at its total.
A hidden cell is shown as "—" whatever hid it: "<11" would be false for the cells hidden
only so that another could not be recovered, and telling the two apart would say which
cells are small.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from service.stats.catalogue import By
from service.stats.rules import TOTAL
from service.stats.schemas import (
    PublishedTable,
    ReleaseCreate,
    ReleasePublic,
    Shown,
    ShownCell,
    TableRequest,
)

HIDDEN = "—"
HIDDEN_NOTE = (
    "— : hidden. Counts from 1 to 10 are never published, nor any figure from which one could"
    " be recovered; zero is shown."
)
Format = Literal["md", "json", "csv", "html"]
FORMATS: tuple[Format, ...] = ("md", "json", "csv", "html")
# A value as published: a number, or None when hidden.
Value = int | float | None


@dataclass(frozen=True)
class Question:
    """One question of the questionnaire and the table (with its breakdown) answering it."""

    key: str  # unique in the report: the table code, or code-variant when asked twice
    code: str
    by: tuple[By, ...]
    heading: str


@dataclass(frozen=True)
class Section:
    title: str
    questions: tuple[Question, ...]
    note: str = ""


def _q(key: str, heading: str, *by: By) -> Question:
    return Question(key=key, code=key.split("-")[0], by=by, heading=heading)


SECTIONS: tuple[Section, ...] = (
    Section(
        "Prosecution",
        (
            _q(
                "P1",
                "Defendants by charge and outcome (proceedings, decisions)",
                By.charge,
                By.outcome,
            ),
            _q(
                "P2",
                "Convictions by prison term, and sentences below the legal minimum",
                By.sentence_band,
                By.below_legal_minimum,
            ),
            _q(
                "P2-reduced",
                "Convictions on a reduced charge (article 153 substituted by a lesser offence)",
                By.charge,
                By.charge_reduced,
            ),
            _q("P3", "Restitution ordered and paid to victims", By.restitution_paid),
        ),
    ),
    Section(
        "Protection",
        (
            _q("V1", "Victims identified, each person counted once"),
            _q(
                "V10",
                "Victims identified by age band and form of exploitation",
                By.age_band,
                By.form,
            ),
            _q(
                "V2",
                "Victims identified by form of exploitation and labour sector",
                By.form,
                By.sector,
            ),
            _q(
                "V3",
                "Victims identified by nationality and country of exploitation",
                By.nationality_group,
                By.country_of_exploitation,
            ),
            _q("V4", "Victims identified by region of exploitation", By.region),
            _q("R1", "Victims identified per 100,000 inhabitants, by region", By.region),
            _q("V5", "Victims identified by identifying institution", By.institution),
            _q(
                "V6",
                "Victims referred, by receiving institution and outcome",
                By.receiving_institution,
                By.referral_outcome,
            ),
            _q(
                "V6-purpose",
                "Victims referred, by purpose of the referral and outcome",
                By.purpose,
                By.referral_outcome,
            ),
            _q("V7", "Victims assisted, by service", By.service),
            _q("V8", "Victims sheltered, by kind of facility, and bed-nights", By.facility_kind),
            _q("V8U", "Unmet needs: persons no facility could take, by reason", By.unmet_reason),
            _q("V9", "Children held in police stations, and hours held"),
            _q(
                "RP1",
                "Victims repatriated: Peruvians brought home, foreign nationals returned",
                By.direction,
            ),
            _q("RS1", "Foreign victims granted residency, temporary or permanent", By.residency),
        ),
    ),
    Section(
        "Prevention",
        (),
        note="Ruta records the pathway of victims, not prevention campaigns, trainings or"
        " budgets: the questionnaire's prevention section is answered elsewhere.",
    ),
)
QUESTIONS: tuple[Question, ...] = tuple(q for s in SECTIONS for q in s.questions)


def release_request(year: int, *, known_on: datetime | None = None) -> ReleaseCreate:
    """The release the report is built from: every table it shows, published together so
    that a number two of them share is hidden in both or in neither."""
    return ReleaseCreate.model_validate(
        {
            "year": year,
            "known_on": known_on,
            "tables": [
                TableRequest(code=q.code, by=list(q.by) if q.by else None).model_dump()
                for q in QUESTIONS
            ],
        }
    )


@dataclass(frozen=True)
class View:
    """A table of the release as a grid: rows by its first dimension, columns by its second
    (or the total alone), every other dimension at its total."""

    question: Question
    table: PublishedTable
    row_dimension: str
    column_dimension: str | None
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: dict[tuple[str, str], Value]
    rates: dict[str, Value] = field(default_factory=dict)

    @property
    def total(self) -> Value:
        return self.table.total.value if isinstance(self.table.total, Shown) else None

    def measures(self) -> dict[str, Value]:
        return {
            name: m.value if isinstance(m, Shown) else None
            for name, m in self.table.measures.items()
        }


def view(question: Question, table: PublishedTable) -> View:
    """The grid of one table."""
    names = [d.name for d in table.dimensions]
    categories = {d.name: d.categories for d in table.dimensions}
    row_dimension = names[0]
    column_dimension = names[1] if len(question.by) != 1 and len(names) > 1 else None
    columns = (*categories[column_dimension], TOTAL) if column_dimension else (TOTAL,)
    rows = (*categories[row_dimension], TOTAL)
    values: dict[tuple[str, str], Value] = {}
    rates: dict[str, Value] = {}
    for cell in table.cells:
        coordinates = cell.coordinates
        others = [n for n in names if n not in (row_dimension, column_dimension)]
        if any(coordinates[n] != TOTAL for n in others):
            continue
        column = coordinates[column_dimension] if column_dimension else TOTAL
        shown = cell.value if isinstance(cell, ShownCell) else None
        values[(coordinates[row_dimension], column)] = shown
        if isinstance(cell, ShownCell) and cell.rate_per_100k is not None:
            rates[coordinates[row_dimension]] = cell.rate_per_100k
    return View(question, table, row_dimension, column_dimension, rows, columns, values, rates)


@dataclass(frozen=True)
class Report:
    release: ReleasePublic
    views: dict[str, View]

    @property
    def year(self) -> int:
        return self.release.period.start.year

    def figure(self, key: str, row: str = TOTAL, column: str = TOTAL) -> Value:
        return self.views[key].values.get((row, column))


def build(release: ReleasePublic) -> Report:
    """The report's views of a release built by `release_request`."""
    if len(release.tables) != len(QUESTIONS):
        raise ValueError("the release was not published for the report")
    views = {q.key: view(q, table) for q, table in zip(QUESTIONS, release.tables, strict=True)}
    for q, v in views.items():
        if v.table.code != v.question.code:
            raise ValueError(f"{q}: the release's table is {v.table.code}")
    return Report(release, views)


def _sum_if_all_shown(values: Sequence[Value]) -> Value:
    if any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def decided_defendants(report: Report) -> Value:
    """Defendants whose case was decided in the year: the outcomes but ongoing, added only
    when all are shown, else the total less the ongoing when both are."""
    p1 = report.views["P1"]
    decided = [o for o in p1.columns if o not in ("ongoing", TOTAL)]
    summed = _sum_if_all_shown([p1.values.get((TOTAL, o)) for o in decided])
    if summed is not None:
        return summed
    total, ongoing = p1.values.get((TOTAL, TOTAL)), p1.values.get((TOTAL, "ongoing"))
    return total - ongoing if total is not None and ongoing is not None else None


def funnel(report: Report) -> list[tuple[str, Value]]:
    """From identified to decided: persons, then (last) defendants."""
    return [
        ("identified", report.views["V1"].total),
        ("referred", report.views["V6"].total),
        ("placed in a shelter", report.views["V8"].total),
        (
            "defended (legal aid referral accepted)",
            report.figure("V6-purpose", "legal_aid", "accepted"),
        ),
        ("defendants decided", decided_defendants(report)),
    ]


def summary(report: Report) -> list[tuple[str, Value]]:
    """The one-page summary's key figures."""
    measures = {k: report.views[k].measures() for k in ("V8", "V9", "P1", "P3")}
    return [
        ("Victims identified (each person once)", report.views["V1"].total),
        ("of whom minors", report.figure("V1", "minor")),
        ("of whom women and girls", report.figure("V1", TOTAL, "female")),
        ("Victims referred", report.views["V6"].total),
        ("Victims assisted", report.views["V7"].total),
        ("Victims sheltered", report.views["V8"].total),
        ("Bed-nights in shelters", measures["V8"].get("bed_nights")),
        ("Persons with an unmet need", report.views["V8U"].total),
        ("Children held in police stations", report.views["V9"].total),
        ("Median hours a child was held", measures["V9"].get("hours_median")),
        ("Proceedings", measures["P1"].get("proceedings")),
        ("Defendants", report.views["P1"].total),
        ("Defendants decided", decided_defendants(report)),
        ("Defendants convicted", report.views["P2"].total),
        ("Convictions below the legal minimum", report.figure("P2", TOTAL, "yes")),
        ("Convictions on a reduced charge", report.figure("P2-reduced", TOTAL, "yes")),
        ("Restitution ordered (soles)", measures["P3"].get("ordered_soles")),
        ("Restitution paid (soles)", measures["P3"].get("paid_soles")),
    ]


def shown(value: Value) -> str:
    """A value as printed: the number, or the hidden mark."""
    if value is None:
        return HIDDEN
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _excluded(v: View) -> str:
    parts = [f"{n} ({reason.replace('_', ' ')})" for reason, n in v.table.excluded.items() if n]
    return "Left out: " + ", ".join(parts) if parts else ""


def _provenance(report: Report) -> str:
    r = report.release
    return (
        f"Release {r.id}, period {r.period.start} to {r.period.end}, as known on"
        f" {r.known_on.isoformat()}, digest {r.digest}."
    )


# ---------------------------------------------------------------- Markdown


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _grid(v: View) -> tuple[list[str], list[list[str]]]:
    corner = v.row_dimension + (f" \\ {v.column_dimension}" if v.column_dimension else "")
    header = [corner, *v.columns] + (["rate per 100,000"] if v.rates else [])
    rows = []
    for row in v.rows:
        cells = [shown(v.values.get((row, c))) for c in v.columns]
        if v.rates:
            cells.append(shown(v.rates.get(row)) if row in v.rates else HIDDEN)
        rows.append([row, *cells])
    return header, rows


def markdown(report: Report, charts: Sequence[Path] = ()) -> str:
    """The full report as Markdown."""
    lines = [
        f"# Trafficking in persons: Peru, {report.year}",
        "",
        _provenance(report),
        "",
        HIDDEN_NOTE,
        "",
    ]
    for chart in charts:
        lines += [f"![{chart.stem}]({chart.name})", ""]
    for section in SECTIONS:
        lines += [f"## {section.title}", ""]
        if section.note:
            lines += [section.note, ""]
        for q in section.questions:
            v = report.views[q.key]
            lines += [f"### {q.key}: {q.heading}", "", v.table.title + ".", ""]
            header, rows = _grid(v)
            lines += [*_md_table(header, rows), ""]
            lines.append(f"Total {v.table.unit}: {shown(v.total)}.")
            for name, value in v.measures().items():
                lines.append(f"{name.replace('_', ' ')}: {shown(value)}.")
            if _excluded(v):
                lines.append(_excluded(v) + ".")
            lines.append("")
    return "\n".join(lines)


def summary_markdown(report: Report) -> str:
    lines = [f"# Peru {report.year}: summary", "", _provenance(report), ""]
    lines += _md_table(["figure", "value"], [[k, shown(v)] for k, v in summary(report)])
    lines += ["", "Pathway:", ""]
    lines += _md_table(["stage", "count"], [[k, shown(v)] for k, v in funnel(report)])
    return "\n".join([*lines, "", HIDDEN_NOTE, ""])


# ---------------------------------------------------------------- JSON


def _json_value(value: Value) -> dict[str, object]:
    return {"suppressed": True} if value is None else {"value": value}


def as_json(report: Report) -> dict[str, object]:
    """The report as JSON: hidden values as {"suppressed": true}, as the API publishes."""
    r = report.release
    sections = []
    for section in SECTIONS:
        questions = []
        for q in section.questions:
            v = report.views[q.key]
            questions.append(
                {
                    "key": q.key,
                    "code": q.code,
                    "question": q.heading,
                    "title": v.table.title,
                    "unit": v.table.unit,
                    "rows": {"dimension": v.row_dimension, "categories": list(v.rows)},
                    "columns": {"dimension": v.column_dimension, "categories": list(v.columns)},
                    "cells": [
                        {"row": row, "column": c, **_json_value(v.values.get((row, c)))}
                        for row in v.rows
                        for c in v.columns
                    ],
                    "rates_per_100k": {k: _json_value(x) for k, x in v.rates.items()},
                    "total": _json_value(v.total),
                    "measures": {k: _json_value(x) for k, x in v.measures().items()},
                    "excluded": v.table.excluded,
                }
            )
        sections.append({"title": section.title, "note": section.note, "questions": questions})
    return {
        "year": report.year,
        "release": {
            "id": str(r.id),
            "period": [str(r.period.start), str(r.period.end)],
            "known_on": r.known_on.isoformat(),
            "digest": r.digest,
        },
        "disclosure": HIDDEN_NOTE,
        "sections": sections,
    }


def summary_json(report: Report) -> dict[str, object]:
    return {
        "year": report.year,
        "release": str(report.release.id),
        "summary": [{"figure": k, **_json_value(v)} for k, v in summary(report)],
        "pathway": [{"stage": k, **_json_value(v)} for k, v in funnel(report)],
    }


# ---------------------------------------------------------------- CSV

CSV_HEADER = (
    "section",
    "key",
    "code",
    "row_dimension",
    "row",
    "column_dimension",
    "column",
    "value",
)


def as_csv(report: Report) -> str:
    """One line per shown or hidden cell (value "—" when hidden), then totals and measures
    with the row dimension `total`/`measure`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for section in SECTIONS:
        for q in section.questions:
            v = report.views[q.key]
            for row in v.rows:
                for c in v.columns:
                    writer.writerow(
                        (
                            section.title,
                            q.key,
                            q.code,
                            v.row_dimension,
                            row,
                            v.column_dimension or "",
                            c,
                            shown_plain(v.values.get((row, c))),
                        )
                    )
            writer.writerow(
                (section.title, q.key, q.code, "units", TOTAL, "", "", shown_plain(v.total))
            )
            for name, value in v.measures().items():
                writer.writerow(
                    (section.title, q.key, q.code, "measure", name, "", "", shown_plain(value))
                )
    return out.getvalue()


def shown_plain(value: Value) -> str:
    """A value for a machine to read: no thousands separator."""
    if value is None:
        return HIDDEN
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def summary_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("figure", "value"))
    for k, v in [*summary(report), *funnel(report)]:
        writer.writerow((k, shown_plain(v)))
    return out.getvalue()


# ---------------------------------------------------------------- HTML

STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1em}"
    "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "td.hidden{color:#888;text-align:center}img{max-width:100%}"
)


def _html_table(key: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = [
        f'<table id="{html.escape(key)}">',
        "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
    ]
    for row in rows:
        tds = [f"<th>{html.escape(row[0])}</th>"]
        tds += [
            f'<td class="hidden">{HIDDEN}</td>' if c == HIDDEN else f"<td>{html.escape(c)}</td>"
            for c in row[1:]
        ]
        out.append("<tr>" + "".join(tds) + "</tr>")
    return [*out, "</table>"]


def _page(title: str, body: Sequence[str]) -> str:
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
            *body,
            "</body></html>",
            "",
        ]
    )


def as_html(report: Report, charts: Sequence[Path] = ()) -> str:
    """The full report as one HTML page (charts beside it as PNG files)."""
    title = f"Trafficking in persons: Peru, {report.year}"
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(_provenance(report))}</p>"]
    body.append(f"<p>{html.escape(HIDDEN_NOTE)}</p>")
    body += [f'<img src="{html.escape(c.name)}" alt="{html.escape(c.stem)}">' for c in charts]
    for section in SECTIONS:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.note:
            body.append(f"<p>{html.escape(section.note)}</p>")
        for q in section.questions:
            v = report.views[q.key]
            body.append(f"<h3>{html.escape(q.key)}: {html.escape(q.heading)}</h3>")
            body.append(f"<p>{html.escape(v.table.title)}.</p>")
            header, rows = _grid(v)
            body += _html_table(q.key, header, rows)
            notes = [f"Total {v.table.unit}: {shown(v.total)}."]
            notes += [f"{n.replace('_', ' ')}: {shown(x)}." for n, x in v.measures().items()]
            if _excluded(v):
                notes.append(_excluded(v) + ".")
            body.append(f"<p>{html.escape(' '.join(notes))}</p>")
    return _page(title, body)


def summary_html(report: Report) -> str:
    title = f"Peru {report.year}: summary"
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(_provenance(report))}</p>"]
    body += _html_table("summary", ["figure", "value"], [[k, shown(v)] for k, v in summary(report)])
    body += _html_table("pathway", ["stage", "count"], [[k, shown(v)] for k, v in funnel(report)])
    body.append(f"<p>{html.escape(HIDDEN_NOTE)}</p>")
    return _page(title, body)


# ---------------------------------------------------------------- files


def write(report: Report, out: Path, fmt: Format, charts: Sequence[Path] = ()) -> list[Path]:
    """Write the report and its one-page summary in `fmt` into `out`; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"report-{report.year}"
    full, brief = out / f"{stem}.{fmt}", out / f"summary-{report.year}.{fmt}"
    match fmt:
        case "md":
            full.write_text(markdown(report, charts), encoding="utf-8")
            brief.write_text(summary_markdown(report), encoding="utf-8")
        case "json":
            full.write_text(
                json.dumps(as_json(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            brief.write_text(
                json.dumps(summary_json(report), indent=2, ensure_ascii=False) + "\n",
                encoding="utf-8",
            )
        case "csv":
            full.write_text(as_csv(report), encoding="utf-8")
            brief.write_text(summary_csv(report), encoding="utf-8")
        case "html":
            full.write_text(as_html(report, charts), encoding="utf-8")
            brief.write_text(summary_html(report), encoding="utf-8")
    return [full, brief]
