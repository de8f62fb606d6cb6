"""The `respread check` table: what moved between two runs, and whether it fails the gate."""

from __future__ import annotations

from rich.table import Table

from respread.report.summary import md_table

COLUMNS = ["task", "figure", "from", "old [95% CI]", "new [95% CI]", "drop", "max", "p (Holm)", "χ² p", "verdict"]


def _cell(estimate: dict) -> str:
    value = estimate.get("value")
    if value is None or value != value:
        return "n/a"
    if estimate.get("low") is None:
        return f"{value:.3f}"
    mark = "" if estimate.get("calibrated_regime", True) else " †"
    return f"{value:.3f} [{estimate['low']:.3f}, {estimate['high']:.3f}]{mark}"


def _p(value) -> str:
    return "–" if value is None or value != value else f"{value:.3g}"


def gate_rows(verdict: dict) -> list[list[str]]:
    rows = []
    for row in verdict["figures"]:
        source = row["source"] if row["test"] == "exact" else f"{row['source']}, {row['old'].get('estimator', 'as computed')}"
        drop = "n/a" if row["drop"] is None else f"{row['drop']:+.3f}"
        rows.append([
            row["task"], row["figure"], source, _cell(row["old"]), _cell(row["new"]), drop, f"{row['max_drop']:.3f}",
            "exact" if row["test"] == "exact" else _p(row.get("p_holm")), _p(row.get("chi2_p")),
            "FAIL" if row["failed"] else "ok",
        ])
    return rows


def gate_summary(verdict: dict) -> str:
    lines = [
        f"respread check: {'PASSED' if verdict['passed'] else 'FAILED'}, {verdict['new']} against {verdict['old']} "
        f"({verdict['parse']} parse; a figure fails when its drop exceeds max and, unless exact, Holm p < {verdict['alpha']})",
    ]
    if any(not r["old"].get("calibrated_regime", True) or not r["new"].get("calibrated_regime", True) for r in verdict["figures"]):
        lines.append("† fewer valid replies than answers: the interval is outside the range where its coverage was shown")
    if verdict["failures"]:
        lines.append("failed: " + ", ".join(verdict["failures"]))
    if verdict["settings_differ"]:
        lines.append("settings differ: " + "; ".join(verdict["settings_differ"]))
    for item in verdict["skipped"]:
        lines.append(f"skipped {item}")
    return "\n".join(lines)


def gate_rich_table(verdict: dict) -> Table:
    table = Table(title="diversity drop, new vs old (positive = less diverse)")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in gate_rows(verdict):
        table.add_row(*row, style="bold red" if row[-1] == "FAIL" else None)
    return table


def gate_markdown(verdict: dict) -> str:
    return "\n".join([*gate_summary(verdict).splitlines(), "", *md_table(COLUMNS, gate_rows(verdict))]) + "\n"
