"""The study's table (markdown and rich): per task and condition, valid mass, TV all and TV among valid."""

from __future__ import annotations

from rich.table import Table


def _cell(figures: dict | None) -> str:
    if figures is None:
        return "—"
    tv_valid = "n/a" if figures["tv_valid"] is None else f"{figures['tv_valid']:.3f}"
    return f"{100 * figures['valid']:.1f}% · {figures['tv_all']:.3f} · {tv_valid}"


def picks(figures: dict | None) -> str:
    """Top valid answers with their share of valid replies, e.g. `7 (41%), 3 (12%)`."""
    if not figures or not figures.get("top_valid"):
        return "—"
    return ", ".join(f"{a} ({100 * s:.0f}%)" for a, s in figures["top_valid"])


def study_rows(result: dict) -> tuple[list[str], list[list[str]]]:
    conditions = result["conditions"]
    header = ["task", "figures from"] + [f"{c}: valid · TV all · TV valid" for c in conditions]
    rows = []
    for row in result["table"]:
        figures = row["conditions"]
        name = f"**{row['task']}** (trained)" if row["trained"] else row["task"]
        source = figures[conditions[0]]["source"]
        rows.append([name, source] + [_cell(figures.get(c)) for c in conditions])
    return header, rows


CAPABILITY_COLUMNS = ["model", "MMLU acc [95% CI]", "GSM8K acc [95% CI]", "KL from original (nats/token)"]


def capability_rows(capability: dict) -> list[list[str]]:
    """One row per model: MMLU and GSM8K accuracy with exact 95% CIs, mean KL from the original model."""
    rows = []
    for name, report in capability.items():
        def acc(part: str) -> str:
            figures = (report.get(part) or {}).get("accuracy")
            if not figures:
                return "not run"
            n = report[part]["n"]
            return f"{100 * figures['value']:.1f}% [{100 * figures['low']:.1f}, {100 * figures['high']:.1f}] (n={n})"

        kl = report.get("kl")
        kl_cell = f"{kl['mean_kl_nats']:.4f} [{kl['ci_low']:.4f}, {kl['ci_high']:.4f}] ({kl['n_tokens']} tokens)" if kl else "— (the original)"
        rows.append([name, acc("mmlu"), acc("gsm8k"), kl_cell])
    return rows


def capability_markdown(capability: dict) -> str:
    lines = ["| " + " | ".join(CAPABILITY_COLUMNS) + " |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in capability_rows(capability)]
    return "\n".join(lines) + "\n"


def study_markdown(result: dict) -> str:
    header, rows = study_rows(result)
    config = result["config"]
    lines = [
        f"# Study: train on {result['trained_task']}, measure the panel",
        "",
        f"Model `{config['model']}`; arms {', '.join(config['arms'])}; {config['steps']} steps, lr {config['learning_rate']:g}, "
        f"group {config['group_size']}, {config['batch_size']} completions a step; {config['samples']} samples per task "
        f"for sampled figures (parse: {config['parse']}); seed {config['seed']}. Wall time {result['wall_seconds']:.0f} s.",
        "",
        "Cells: valid mass · TV to uniform (invalid replies count as off-support) · TV to uniform among valid answers. "
        "`exact` rows have no sampling error; sampled rows are plug-in figures with their n and valid count (their CIs, "
        "noise floor and calibrated eb-profile estimate are in study.json): with m valid replies over k answers, the "
        "plug-in TV among valid is at least 1 − m/k whatever the model does.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "## Top-5 valid picks", "", "| task | " + " | ".join(result["conditions"]) + " |", "|" + "---|" * (len(result["conditions"]) + 1)]
    for row in result["table"]:
        lines.append(f"| {row['task']} | " + " | ".join(picks(row["conditions"].get(c)) for c in result["conditions"]) + " |")
    if result.get("capability"):
        lines += ["", "## Capability", "", capability_markdown(result["capability"])]
    if result.get("monitor_plot"):
        lines += ["", "## Collapse monitor", "", "![monitor](monitor.png)"]
    lines += ["", "## Time (s)", ""] + [f"- {k}: {v}" for k, v in result["seconds"].items()]
    return "\n".join(lines) + "\n"


def study_rich_table(result: dict) -> Table:
    header, rows = study_rows(result)
    table = Table(*header, title=f"study: trained on {result['trained_task']} (cells: valid · TV all · TV valid)")
    for row in rows:
        table.add_row(*[cell.replace("**", "") for cell in row])
    return table
