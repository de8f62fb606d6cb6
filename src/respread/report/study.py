"""The study's table (markdown and rich): per task and condition, valid mass, TV all and TV among valid."""

from __future__ import annotations

from rich.table import Table

from respread.types import Estimate


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
        if kl:
            est = Estimate.from_dict(kl)  # also reads the older {mean_kl_nats, ci_low, ci_high}
            kl_cell = f"{est.value:.4f} [{est.low:.4f}, {est.high:.4f}] ({kl['n_tokens']} tokens)"
        else:
            kl_cell = "— (the original)"
        rows.append([name, acc("mmlu"), acc("gsm8k"), kl_cell])
    return rows


def capability_markdown(capability: dict) -> str:
    lines = ["| " + " | ".join(CAPABILITY_COLUMNS) + " |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in capability_rows(capability)]
    return "\n".join(lines) + "\n"


def arm_description(result: dict) -> str:
    """How each arm trained, from its runs' own records (older studies: from the study's config)."""
    config = result["config"]
    if not result.get("train"):
        return (f"arms {', '.join(config['arms'])}; {config['steps']} steps, lr {config['learning_rate']:g}, group {config['group_size']}, "
                f"{config['batch_size']} completions a step")
    parts = []
    for arm, runs in result["train"].items():
        run = runs[0]
        how = (f"diffuse, {run['steps']} steps of {run['batch_size']} answers" if run["method"] == "diffuse" else
               f"GRPO {'+'.join(run['rewards'])} ({run['parse']} parse), {run['steps']} steps of {run['batch_size'] // run['group_size']} "
               f"groups × {run['group_size']}")
        seeds = ", ".join(str(r["seed"]) for r in runs)
        minutes = ", ".join(f"{(r['wall_seconds'] or 0) / 60:.1f}" for r in runs)
        parts.append(f"`{arm}`: {how}, lr {run['learning_rate']:g}, {'LoRA' if run['lora'] else 'full fine-tune'}; seeds {seeds} "
                     f"({minutes} min each)")
    return "arms " + "; ".join(parts)


def change_cell(change: dict) -> str:
    """`−0.123 [−0.200, −0.046]` (mean change with its interval), or the mean alone for one seed."""
    mean = change.get("value", change.get("mean"))
    if mean is None:
        return "—"
    if change.get("low") is None:
        return f"{mean:+.3f}"
    return f"{mean:+.3f} [{change['low']:+.3f}, {change['high']:+.3f}]"


SEED_COLUMNS = ["task", "arm", "TV valid before", "change per seed", "mean change [95% CI]", "verdict"]


def seed_rows(result: dict) -> list[list[str]]:
    rows = []
    for r in result.get("seed_changes", []):
        name = f"**{r['task']}** (trained)" if r["trained"] else r["task"]
        before = "—" if r["before"] is None else f"{r['before']:.3f}"
        per_seed = ", ".join(f"{c:+.3f}" for c in r["changes"]) + (f" ({r['missing']} not measured)" if r["missing"] else "")
        rows.append([name, r["arm"], before, per_seed or "—", change_cell(r["change"]), r["verdict"]])
    return rows


def seed_markdown(result: dict) -> list[str]:
    seeds = result["config"].get("seeds") or [result["config"]["seed"]]
    lines = [
        f"## Change across training seeds ({len(seeds)}: {', '.join(map(str, seeds))})",
        "",
        "Change of TV among valid answers from `before` (negative: flatter), each seed trained afresh and measured on the "
        "same prompts; mean with a 95% Student-t interval over seeds. `transferred` / `flatter` only where the interval "
        "is below 0, `worse` only where it is above 0.",
        "",
        "| " + " | ".join(SEED_COLUMNS) + " |",
        "|" + "---|" * len(SEED_COLUMNS),
    ]
    return lines + ["| " + " | ".join(row) + " |" for row in seed_rows(result)]


def seed_rich_table(result: dict) -> Table:
    table = Table(*SEED_COLUMNS, title="change of TV among valid answers across training seeds (negative: flatter)")
    for row in seed_rows(result):
        table.add_row(*[cell.replace("**", "") for cell in row])
    return table


def study_markdown(result: dict) -> str:
    header, rows = study_rows(result)
    config = result["config"]
    lines = [
        f"# Study: train on {result['trained_task']}, measure the panel",
        "",
        f"Model `{config['model']}`; {arm_description(result)}; {config['samples']} samples per task "
        f"for sampled figures (parse: {config['parse']}); eval seed {config['seed']}. Wall time {result['wall_seconds']:.0f} s.",
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
    if result.get("seed_changes"):
        lines += [""] + seed_markdown(result)
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
