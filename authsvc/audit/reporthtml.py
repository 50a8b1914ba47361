"""One self-contained HTML file for a ``PeriodReport``: inline CSS, an inline SVG chart.

No script, no external resource (a Content-Security-Policy says so to the browser), and
every value escaped: principals, reasons and client names come from the log, which
records what clients sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

from authsvc.audit.report import NO_POLICY, NOT_RECORDED, PeriodReport

COLORS = {"allow": "#2e7d32", "deny": "#c62828", "error": "#ef6c00"}
TOP = 25
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1b1b1b}
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:2rem 0 .6rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}.muted{color:#666}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;
padding:.6rem 1rem;min-width:8rem}.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25rem .5rem;
border-bottom:1px solid #eee;vertical-align:top}td.n,th.n{text-align:right}
.badge{display:inline-block;padding:.2rem .7rem;border-radius:4px;color:#fff;font-weight:600}
.intact{background:#1b5e20}.broken{background:#b71c1c}.torn{background:#e65100}
code{font-size:.85em}.legend span{margin-right:1rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
"""


def _n(value: int) -> str:
    return f"{value:,}"


def _table(table_id: str, head: Sequence[str], rows: Iterable[Sequence[object]],
           numeric: Sequence[int] = ()) -> str:
    def cell(tag: str, index: int, value: object) -> str:
        css = ' class="n"' if index in numeric else ""
        text = _n(value) if isinstance(value, int) and not isinstance(value, bool) else value
        return f"<{tag}{css}>{escape(str(text))}</{tag}>"

    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
                   for row in rows)
    header = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = body or f'<tr><td colspan="{len(head)}" class="muted">none</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def chart(report: PeriodReport, width: int = 1000, height: int = 240) -> str:
    """Stacked bars per time bucket: allows, denials, errors."""
    buckets = sorted(report.series)
    slots = max(1, int((report.end - report.start) / report.bucket))
    peak = max((sum(c.values()) for c in report.series.values()), default=0) or 1
    left, bottom, plot_h = 50, 20, height - 30
    bar_w = (width - left) / slots
    parts = [f'<line x1="{left}" y1="{plot_h}" x2="{width}" y2="{plot_h}" stroke="#999"/>',
             f'<text x="{left - 6}" y="12" text-anchor="end" font-size="11">{_n(peak)}</text>',
             f'<text x="{left - 6}" y="{plot_h}" text-anchor="end" font-size="11">0</text>']
    for when in buckets:
        x = left + ((when - report.start) / report.bucket) * bar_w
        y = float(plot_h)
        for outcome in ("allow", "deny", "error"):
            count = report.series[when][outcome]
            if not count:
                continue
            h = count / peak * (plot_h - 10)
            y -= h
            parts.append(f'<rect class="bar {outcome}" x="{x:.2f}" y="{y:.2f}" '
                         f'width="{max(bar_w - 1, 1):.2f}" height="{h:.2f}" '
                         f'fill="{COLORS[outcome]}"><title>{escape(when.isoformat())}: '
                         f'{_n(count)} {outcome}</title></rect>')
    for label, x, anchor in ((report.start, left, "start"), (report.end, width, "end")):
        parts.append(f'<text x="{x}" y="{height - bottom + 16}" text-anchor="{anchor}" '
                     f'font-size="11">{escape(_when(label))}</text>')
    return (f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="allows and denials over time">{"".join(parts)}</svg>')


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _cards(report: PeriodReport) -> str:
    total = sum(report.totals[k] for k in ("allow", "deny", "error"))
    cards = [("decisions", "total-decisions", total),
             ("allowed", "total-allow", report.totals["allow"]),
             ("denied", "total-deny", report.totals["deny"]),
             ("errors (refused)", "total-error", report.totals["error"]),
             ("records in period", "total-records", report.records)]
    if report.superseded:
        # Counted as errors, not allows: the allow record never became durable.
        cards.insert(4, ("allows superseded by an error", "total-superseded",
                         report.superseded))
    return '<div class="cards">' + "".join(
        f'<div class="card"><b id="{ident}">{_n(value)}</b>{label}</div>'
        for label, ident, value in cards) + "</div>"


def _integrity(report: PeriodReport) -> str:
    verdict = report.verdict  # as verify: a torn end (a crash) is neither intact nor broken
    rows = [(c.instance, c.result.upper(), c.records, f"{c.first_seq}..{c.last_seq}",
             f"{c.checkpoints_verified}/{c.checkpoints}"
             + ("" if c.signatures_checked else " (signatures not checked: no key)"),
             ", ".join(f"{a}..{b}" for a, b in c.gaps) or "none", c.first_break or "none")
            for c in report.integrity]
    unsigned = any(not c.signatures_checked for c in report.integrity)
    note = ('<p id="signatures-note"><b>Checkpoint signatures were NOT checked</b> (no key '
            "was given): the verdict covers the hash chain only; nothing here shows that the "
            "service's audit key signed it. Run <code>authsvc audit report</code> with "
            "<code>--key</code> and the audit public key to check them.</p>"
            if unsigned else "")
    if verdict == "unsigned":
        note += ('<p id="unsigned-note">A chain has records that <b>no verified checkpoint '
                 "covers</b> (after its last signed checkpoint, or without any): nothing shows "
                 "the service wrote them. The next checkpoint signs a live log's tail; an "
                 "export runs on to one.</p>")
    if verdict == "torn":
        note += ('<p id="torn-note">A chain ends in a <b>torn</b> record: bytes after its last '
                 "complete record, what a crash mid-write leaves (not counted). Every complete "
                 "record verifies; compare the last checkpoint with your anchored copy.</p>")
    table = _table("integrity-table", ("chain", "result", "records", "seq",
                                       "checkpoints verified", "gaps", "first break"),
                   rows, numeric=(2,))
    return (f'<p>Result: <span id="integrity" class="badge {verdict}">{verdict.upper()}</span>'
            f"</p>{note}{table}")


def render(report: PeriodReport, *, generated: datetime, tool_version: str) -> str:
    grants = sorted(report.grants.items(), key=lambda item: (-item[1].count, item[0]))
    # By first use; the rows without a revision last, under the revisions they complement.
    revisions = sorted(report.revisions.items(),
                       key=lambda item: (item[0] in (NO_POLICY, NOT_RECORDED), item[1].first))
    unavailable = report.deny_reasons["audit_unavailable"]
    health = [(kind, count) for kind, count in sorted(report.events.items())]
    health.append(("denials with audit_unavailable", unavailable))
    # Members of the wrong type: read as absent in every table above, so say how many.
    health.extend((f"records with a malformed {name}", count)
                  for name, count in sorted(report.malformed.items()))
    legend = "".join(f'<span><i style="background:{color}"></i>{name}</span>'
                     for name, color in COLORS.items())
    sections = [
        f"<h1>authsvc audit report</h1><p class=\"muted\">Period {escape(_when(report.start))}"
        f" to {escape(_when(report.end))} (end exclusive); generated "
        f"{escape(_when(generated))} by authsvc {escape(tool_version)}</p>",
        "<h2>Integrity</h2>" + _integrity(report),
        "<h2>Totals</h2>" + _cards(report),
        f"<h2>Allows and denials per {escape(_span(report))}</h2>{chart(report)}"
        f'<p class="legend">{legend}</p>',
        "<h2>Denials by reason</h2>" + _table(
            "deny-reasons", ("reason", "count"), report.deny_reasons.most_common(), (1,)),
        f"<h2>Denials by identity (top {TOP})</h2>" + _table(
            "deny-identities", ("identity", "count"),
            report.deny_identities.most_common(TOP), (1,)),
        "<h2>Grants per identity and account</h2>" + _table(
            "grants", ("identity", "account", "allows", "rules", "first", "last"),
            [(who, account, g.count, ", ".join(sorted(g.rules)), g.first, g.last)
             for (who, account), g in grants], (2,)),
        "<h2>Policy revisions active</h2>" + _table(
            "revisions", ("revision", "decisions", "activations", "first seen", "last seen"),
            [(rev or "(none)", r.decisions, r.activated, r.first, r.last)
             for rev, r in revisions], (1, 2)),
        "<h2>Key changes</h2>" + _table(
            "key-changes", ("time", "chain", "role", "change", "old key", "new key"),
            [(k.time, k.instance, k.change.role, k.change.change.value,
              k.change.old or "(none)", k.change.new or "(none)") for k in report.key_changes]),
        "<h2>Audit pipeline</h2>" + _table("pipeline", ("event", "count"), health, (1,)),
    ]
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f"<title>authsvc audit report {escape(_when(report.start))}</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")


def _span(report: PeriodReport) -> str:
    hours = report.bucket.total_seconds() / 3600
    return "hour" if hours == 1 else ("day" if hours == 24 else "week")
