"""Leaderboards generated from the results store.

:func:`build` reads every finished run and makes one table per (data set, threat model; an ε as
its title shows it, so 8/255 as a float32 is 8/255) with a
row per model (and defense): clean accuracy, robust accuracy per attack, worst-case robust
accuracy (the table's sort key), the number of samples, sanity flags and training; plus one
decision-based table (median L2 at query budgets and success rate at ε within them; its rows
carry the run's flags but those of checks that judge gradient attacks only,
:data:`robustkit.sanity.GRADIENT_CHECKS`; a robust-accuracy row carries those of checks that
judge label-only attacks only, :data:`robustkit.sanity.LABEL_ONLY_CHECKS`, where such an attack
is one of its columns). Where a
model (with its defenses) has several finished runs for one threat model, the row shows the run
with the most samples and, among those, the latest (by start time): a quick 5-image check does
not replace a 1,000-image evaluation, and a rerun at the same size does replace the older one.
A decision-table row (model, defenses, attack) is chosen the same way, by the number of images
attacked. Only test-split runs count; the robust-accuracy tables take runs on all images (not
``correct_only`` ones, which the decision table marks); a model run with its own checkpoint
(``--weights``, other than the zoo's pinned file) is a row of its own, named with the
checkpoint's sha256. Renderers turn the
same data into Markdown, CSV, JSON and a self-contained HTML page (every field escaped:
Markdown text backslash-escaped with HTML entities and commands as code spans, HTML entities
on the page, and CSV text cells that a spreadsheet would read as a formula prefixed with
``'``); each table states the commands of its runs, and decision rows their defenses.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from typing import Any

from .jsonsafe import json_safe
from .store import Store
from .tables import counted
from .threat import format_eps, shown_255ths

DECISION_BUDGETS = (250, 500, 1000, 2000, 5000)
DATASET_TITLES = {"cifar10": "CIFAR-10", "mnist": "MNIST"}


def norm_title(dataset: str, norm: str) -> str:
    """``CIFAR-10, L∞``: a data set and a norm, as table titles and plot panels name them."""
    return f"{DATASET_TITLES.get(dataset, dataset)}, {'L∞' if norm == 'linf' else 'L2'}"


def _threat_title(dataset: str, norm: str, eps: float) -> str:
    return f"{norm_title(dataset, norm)} ε = {format_eps(eps)}"


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v))):
        return "-"
    return "∞" if math.isinf(v) else f"{v:.3f}"


def build(store: Store, decision: bool = True) -> dict[str, Any]:
    """All leaderboard tables as plain data (per row: the qualifying finished run with the most
    samples, then the latest; see the module docstring), from one snapshot of the store (a run
    that another process deletes or rewrites meanwhile is read as it was). ``decision=False``
    leaves out the decision-based table (which reads every label-only attack's rows again)."""
    with store.snapshot():
        return _build(store, decision)


def _build(store: Store, decision: bool) -> dict[str, Any]:
    from .runner import counts_in_worst_case, decision_figures, default_eps, summarize
    from .sanity import GRADIENT_CHECKS, LABEL_ONLY_CHECKS

    chosen: dict[tuple, dict[str, Any]] = {}
    decision_rows: dict[tuple, dict[str, Any]] = {}
    for run in store.runs(status="finished"):
        summary = summarize(store, run["run_id"])
        if summary["split"] != "test":
            continue  # the boards are of test sets (a train-split row replaced the test one)
        if _own_checkpoint(summary):  # another checkpoint of a zoo model: its own row
            summary = {
                **summary,
                "model": f"{summary['model']} (weights {(summary['weights_sha256'] or '')[:12]})",
                "training": "own checkpoint",
            }
        defenses = ", ".join(summary["defenses"])
        flagged = [c for c in summary["checks"] if c["flagged"]]
        # a label-only attack's row: not the flags of checks that judge gradient attacks only
        decision_flagged = [c for c in flagged if c["name"] not in GRADIENT_CHECKS]
        # The columns: the attacks the run's worst case counts (those with an ε, targeted ones
        # included: a sample moved to its target is misclassified too), so that the worst case
        # never stands above a column. A run makes the threat-model tables only with an
        # untargeted white-box attack: a targeted run on its own only bounds robustness above
        # (a sample not moved to its target may still be misclassified), and label-only runs on
        # their own (usually on other images) appear in the decision table only.
        bounded = {
            _column(k, v): v
            for k, v in summary["attacks"].items()
            if counts_in_worst_case(v["params"])
        }
        # a robust-accuracy row: not the flags of checks that judge label-only attacks only,
        # unless one is among its columns
        labelled = any(v["family"] == "decision" for v in bounded.values())
        row_flagged = [c for c in flagged if labelled or c["name"] not in LABEL_ONLY_CHECKS]
        flags, reasons = [c["name"] for c in row_flagged], [c["detail"] for c in row_flagged]
        # ... and on all its images: a run of only the correctly classified ones has a clean
        # accuracy of 100% and a robust accuracy of another population
        if _robust_row(summary["correct_only"], [v["params"] for v in bounded.values()]):
            key = (
                summary["data"],
                summary["threat_model"]["norm"],
                _table_eps(summary["threat_model"]["eps"]),
                summary["model"],
                defenses,
            )
            # the most samples, then the latest (runs come in order of start)
            if key not in chosen or summary["n"] >= chosen[key]["summary"]["n"]:
                chosen[key] = {
                    "summary": summary,
                    "attacks": bounded,
                    "flags": flags,
                    "reasons": reasons,
                    "run": run,
                }
        for label, row in summary["attacks"].items():
            if not decision or row["family"] != "decision":
                continue
            max_q = int(row["params"]["max_queries"])
            budgets = [b for b in DECISION_BUDGETS if b < max_q] + [max_q]
            eps = row["params"].get("eps") or default_eps(summary["data"], "l2")
            rows = store.results(run["run_id"], label)
            fig = decision_figures(rows, budgets, eps)
            # a targeted attack's distances (to its targets) are another figure than untargeted
            attack = _column(label, row)
            dkey = (summary["data"], summary["model"], defenses, attack)
            if dkey in decision_rows and fig["n"] < decision_rows[dkey]["n"]:
                continue  # the most images, then the latest
            decision_rows[dkey] = {
                "model": summary["model"],
                "defenses": defenses,
                "data": summary["data"],
                "attack": attack,
                "n": fig["n"],
                "budgets": budgets,
                "median_l2": fig["median_l2"],
                "eps": eps,
                "success_rate_at_eps": fig["success_rate_at_eps"],
                "selection": "first correctly classified" if summary["correct_only"] else "all",
                "flags": [c["name"] for c in decision_flagged],
                "reasons": [c["detail"] for c in decision_flagged],
                "command": run["command"],
                "run_id": run["run_id"],
            }

    tables: dict[tuple, dict[str, Any]] = {}
    for (dataset, norm, eps, model, defenses), item in chosen.items():
        s = item["summary"]
        table = tables.setdefault(
            (dataset, norm, eps),
            {
                "dataset": dataset,
                "norm": norm,
                "eps": eps,
                "title": _threat_title(dataset, norm, eps),
                "attacks": [],
                "rows": [],
                "commands": [],
            },
        )
        for label in item["attacks"]:
            if label not in table["attacks"]:
                table["attacks"].append(label)
        if item["run"]["command"] and item["run"]["command"] not in table["commands"]:
            table["commands"].append(item["run"]["command"])
        table["rows"].append(
            {
                "model": model,
                "defenses": defenses,
                "training": s["training"] or "",
                "clean_accuracy": s["clean_accuracy"],
                "robust": {k: v["robust_accuracy"] for k, v in item["attacks"].items()},
                "worst_case": s["robust_accuracy"],
                "n": s["n"],
                "flags": list(item["flags"]),
                "reasons": list(item["reasons"]),
                "run_id": s["run_id"],
            }
        )
    _flag_rising_with_eps(tables)
    ordered = []
    for key in sorted(tables, key=lambda k: (k[0], k[1], k[2])):
        t = tables[key]
        t["rows"].sort(key=lambda r: (-r["worst_case"], r["model"]))
        ns = sorted({r["n"] for r in t["rows"]})
        t["samples"] = ns
        ordered.append(t)
    decision = sorted(decision_rows.values(), key=lambda r: (r["data"], r["attack"], r["model"]))
    return {"tables": ordered, "decision": decision}


def _table_eps(eps: float) -> float:
    """The ε of a run's table: the one its title shows (:func:`~robustkit.threat.format_eps`),
    so that runs at ε = 8/255 and at 8/255 as a float32 (0.0313725508…, shown as 8/255 too)
    share one table rather than make two of one title; else ε itself (to 10 decimals)."""
    k = shown_255ths(eps)
    return round(k / 255 if k is not None else eps, 10)


def _robust_row(correct_only: bool, params: list[dict[str, Any]]) -> bool:
    """Whether a test-split run (its ``correct_only`` and its attacks' parameters) makes a row of
    the robust-accuracy tables: on all its images, with an untargeted white-box attack."""
    from .runner import is_decision

    return not correct_only and any(not is_decision(p) and not p.get("targeted") for p in params)


def left_off_counts(runs: list[dict[str, Any]], otherwise: str | None = None) -> dict[str, int]:
    """Per reason (:func:`why_left_off`), how many of the finished ``runs`` make no row; a run
    that makes one counts under ``otherwise`` where it is given (a plot that shows only some
    of the tables)."""
    counts: dict[str, int] = {}
    for run in runs:
        why = why_left_off(run) or otherwise
        if why is not None:
            counts[why] = counts.get(why, 0) + 1
    return counts


def why_left_off(run: dict[str, Any]) -> str | None:
    """Why a finished run (its row of the store's ``runs`` table) makes no row of any table of
    :func:`build` (with the decision table), as a phrase that follows a count of runs ("2 on the
    train split"); None where it makes one. Read from the run's row alone: no result is read."""
    from .runner import is_decision

    if run["split"] != "test":
        return f"on the {run['split']} split"
    params = [spec["params"] for spec in json.loads(run["attacks"]).values()]
    correct_only = bool(json.loads(run["config"]).get("correct_only", False))
    if any(is_decision(p) for p in params) or _robust_row(correct_only, params):
        return None
    if not params:
        return "without an attack (clean accuracy only)"
    if correct_only:
        return "of only the correctly classified images (--correct-only)"
    return "of targeted attacks only (they only bound robustness above)"


def _own_checkpoint(summary: dict[str, Any]) -> bool:
    """Whether a run's model was loaded from a checkpoint of its own (``--weights``) rather than
    the zoo's: a --weights file with the zoo's pinned sha256 is the zoo checkpoint itself (a
    run stored before 2026-11-29 kept its path, as one stored since does not)."""
    if not summary["weights"]:
        return False
    from .registry import MODELS

    entry = MODELS.find(summary["model"])
    pinned = entry.metadata.get("sha256") if entry is not None else None
    return pinned is None or summary["weights_sha256"] != pinned


def _column(label: str, row: dict[str, Any]) -> str:
    """An attack's column header (and a decision row's attack): its label, marked where it is
    targeted and does not say so (``hsja:targeted=true`` is not marked twice)."""
    targeted = row["params"].get("targeted") and "targeted" not in label
    return f"{label} (targeted)" if targeted else label


def _flag_rising_with_eps(tables: dict[tuple, dict[str, Any]]) -> None:
    """Flag a model whose worst-case robust accuracy is higher at a larger ε (same data, norm)."""
    by_model: dict[tuple, list[tuple[float, dict[str, Any]]]] = {}
    for (dataset, norm, eps), t in tables.items():
        for row in t["rows"]:
            by_model.setdefault((dataset, norm, row["model"], row["defenses"]), []).append(
                (eps, row)
            )
    for entries in by_model.values():
        entries.sort(key=lambda e: e[0])
        # every pair, not only neighbours: a steady rise of one sample per ε is a rise too
        pairs = [(a, b) for i, a in enumerate(entries) for b in entries[i + 1 :]]
        for (e1, r1), (e2, r2) in pairs:
            # (in samples of the smaller run, with room for rounding: 0.7 + 1/10 < 0.8)
            rise = (r2["worst_case"] - r1["worst_case"]) * max(min(r1["n"], r2["n"]), 1)
            if rise > 1 + 1e-6:
                for r in (r1, r2):
                    if "rising_with_eps" not in r["flags"]:
                        r["flags"].append("rising_with_eps")
                        r["reasons"].append(
                            f"robust accuracy rises from {r1['worst_case']:.1%} at ε={format_eps(e1)} "
                            f"to {r2['worst_case']:.1%} at ε={format_eps(e2)}: the attack is failing"
                        )


# ------------------------------------------------------------------------------------------------
# Renderers
# ------------------------------------------------------------------------------------------------
def _table_header(t: dict[str, Any]) -> list[str]:
    return [
        "model",
        "training / defense",
        "clean %",
        *[f"{a} %" for a in t["attacks"]],
        "worst case %",
        "n",
        "flags",
    ]


def _table_cells(t: dict[str, Any], r: dict[str, Any]) -> list[str]:
    # (either may be empty: a plug-in model without a training label)
    training = " + ".join(text for text in (r["training"], r["defenses"]) if text)
    flags = "UNRELIABLE: " + ", ".join(r["flags"]) if r["flags"] else ""
    return [
        r["model"],
        training,
        _pct(r["clean_accuracy"]),
        *[_pct(r["robust"].get(a)) for a in t["attacks"]],
        _pct(r["worst_case"]),
        str(r["n"]),
        flags,
    ]


def _decision_header(budgets: list[int], eps_text: str) -> list[str]:
    return [
        "model",
        "defenses",
        "attack",
        "images",
        *[f"median L2 @{b}" for b in budgets],
        *[f"success % @{b} (L2 ≤ {eps_text})" for b in budgets],
        "flags",
    ]


def _decision_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["model"],
        r["defenses"],
        r["attack"],
        str(r["n"]),
        *[_num(v) for v in r["median_l2"]],
        *[_pct(v) for v in r["success_rate_at_eps"]],
        "UNRELIABLE: " + ", ".join(r["flags"]) if r["flags"] else "",
    ]


def _one_line(text: Any) -> str:
    return " ".join(str(text).splitlines())


#: Markdown syntax characters; ``_`` only where it can open or close emphasis (not inside a
#: word: ``step_size`` stays as it is), ``~`` for strikethrough.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def _md_escape(text: Any) -> str:
    """Text for a Markdown table cell, title or list item: one line, no live HTML (``&``, ``<``
    and ``>`` as entities) and no Markdown syntax (backslash-escaped: code spans, emphasis,
    links, cell separators)."""
    t = _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", t)


#: The start of a list item's text that Markdown reads as a block in it: a heading (``# x``),
#: a nested list (``- x``, ``+ x``) or a numbered one (``1. x``, ``2) x``).
_MD_BLOCK_START = re.compile(r"(#{1,6}|[-+]|[0-9]{1,9}[.)])(?=\s|$)")


def _md_item(text: Any) -> str:
    """A list item's text: :func:`_md_escape`, with a start that Markdown would read as a
    heading or a nested list escaped too (a plug-in model named ``# big``)."""
    t = _md_escape(text)
    m = _MD_BLOCK_START.match(t)
    if m is None:
        return t
    marker = m[0]  # a number: its . or ) escaped; a heading or a bullet: its first character
    escaped = marker[:-1] + "\\" + marker[-1] if marker[-1] in ".)" else "\\" + marker
    return escaped + t[m.end() :]


def _md_code(text: Any) -> str:
    """A Markdown code span showing ``text`` literally: fenced by more backticks than its longest
    run of them (padded where it starts or ends with one), on one line."""
    t = _one_line(text)
    fence = "`" * (max((len(m) for m in re.findall(r"`+", t)), default=0) + 1)
    pad = " " if t.startswith(("`", " ")) or t.endswith(("`", " ")) else ""
    return f"{fence}{pad}{t}{pad}{fence}"


def _commands_text(commands: list[str]) -> str:
    """The sentence after a Markdown caption naming its commands as code spans (none without
    commands: runs made from Python record none)."""
    return " Command(s): " + "; ".join(_md_code(c) for c in commands) if commands else ""


def _decision_caption(rows: list[dict[str, Any]], eps_text: str) -> str:
    """What a decision section's columns measure, of which images and how many per model (the
    Markdown and HTML captions alike; the HTML one said only which images)."""
    counts = ", ".join(map(str, sorted({r["n"] for r in rows})))
    if rows[0]["selection"] == "all":  # the misclassified ones are not attacked, nor counted
        counts += " per model, those classified correctly: the attacked ones"
    else:
        counts += " per model"
    return (
        "Median L2 in [0, 1] pixel space of the best adversarial example within each query "
        f"budget, and the share of images (%) with one of L2 ≤ {eps_text}; images: "
        f"{rows[0]['selection']} ({counts})"
    )


def _decision_titles(groups: list[tuple[str, list[dict[str, Any]]]]) -> list[str]:
    """Headings of the decision sections: the data set, and where it has several sections
    (other budgets or ε), their largest budget and ε too."""
    per_data: dict[str, int] = {}
    for data, _ in groups:
        per_data[data] = per_data.get(data, 0) + 1
    titles = []
    for data, rows in groups:
        title = f"Decision-based attacks, {DATASET_TITLES.get(data, data)} (label-only, L2)"
        if per_data[data] > 1:
            title += (
                f", up to {counted(rows[0]['budgets'][-1], 'query', 'queries')}, ε = {format_eps(rows[0]['eps'])}, "
                f"images: {rows[0]['selection']}"
            )
        titles.append(title)
    return titles


def to_markdown(board: dict[str, Any]) -> str:
    out = [
        "# robustkit leaderboard",
        "",
        "Generated from the results store by `robustkit leaderboard`. "
        "Sorted by worst-case robust accuracy (a sample counts as robust only if no attack fooled it). "
        "Flagged rows failed a sanity check and are unreliable.",
        "",
    ]
    for t in board["tables"]:
        out += [
            f"## {_md_escape(t['title'])}",
            "",
            f"Samples per model: {', '.join(map(str, t['samples']))}."
            + _commands_text(t["commands"]),
            "",
        ]
        header = _table_header(t)
        out.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        out.append("|" + "|".join("---" for _ in header) + "|")
        for r in t["rows"]:
            out.append("| " + " | ".join(_md_escape(c) for c in _table_cells(t, r)) + " |")
        out += _md_flags(t["rows"])
        out.append("")
    groups = _decision_groups(board)
    for title, (_, rows) in zip(_decision_titles(groups), groups, strict=True):
        budgets = rows[0]["budgets"]
        eps_text = format_eps(rows[0]["eps"])
        out += [
            f"## {_md_escape(title)}",
            "",
            _decision_caption(rows, eps_text) + "." + _commands_text(_decision_commands(rows)),
            "",
        ]
        header = _decision_header(budgets, eps_text)
        out.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        out.append("|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            out.append("| " + " | ".join(_md_escape(c) for c in _decision_cells(r)) + " |")
        out += _md_flags(rows)
        out.append("")
    return "\n".join(out)


def _md_flags(rows: list[dict[str, Any]]) -> list[str]:
    """The "Flags:" list under a Markdown table: each flagged row (model, its defenses and, in
    the decision table, its attack) with the reason of each flag."""
    lines = []
    for r in rows:
        who = r["model"] + (f" with {r['defenses']}" if r.get("defenses") else "")
        who += f", {r['attack']}" if "attack" in r else ""
        lines += [f"- {_md_item(who)}: {_md_escape(why)}" for why in r["reasons"]]
    return ["", "Flags:", *lines] if lines else []


def _decision_commands(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({r["command"] for r in rows if r["command"]})


def _csv_text(value: Any) -> Any:
    """A CSV cell: text that a spreadsheet would read as a formula (starting with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return) gets a leading ``'``; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def _csv_row(values: list[Any]) -> list[Any]:
    return [_csv_text(v) for v in values]


def _decision_groups(board: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in board["decision"]:
        # one section per image selection too: its caption states the selection of all its rows
        groups.setdefault((r["data"], tuple(r["budgets"]), r["eps"], r["selection"]), []).append(r)
    return [(k[0], v) for k, v in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1]))]


def to_csv(board: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "table",
            "dataset",
            "norm",
            "eps",
            "model",
            "defenses",
            "training",
            "attack",
            "clean_accuracy",
            "robust_accuracy",
            "worst_case",
            "n",
            "flags",
            "reasons",
            "run_id",
        ]
    )
    for t in board["tables"]:
        for r in t["rows"]:
            for a in t["attacks"]:
                if a in r["robust"]:
                    w.writerow(
                        _csv_row(
                            [
                                t["title"],
                                t["dataset"],
                                t["norm"],
                                t["eps"],
                                r["model"],
                                r["defenses"],
                                r["training"],
                                a,
                                r["clean_accuracy"],
                                r["robust"][a],
                                r["worst_case"],
                                r["n"],
                                ";".join(r["flags"]),
                                " | ".join(r["reasons"]),
                                r["run_id"],
                            ]
                        )
                    )
    w.writerow([])
    w.writerow(
        [
            "decision",
            "dataset",
            "model",
            "defenses",
            "attack",
            "n",
            "budget",
            "median_l2",
            "eps",
            "success_rate_at_eps",
            "flags",
            "reasons",
            "run_id",
            "selection",
        ]
    )
    for r in board["decision"]:
        for b, m, s in zip(r["budgets"], r["median_l2"], r["success_rate_at_eps"], strict=True):
            w.writerow(
                _csv_row(
                    [
                        "decision",
                        r["data"],
                        r["model"],
                        r["defenses"],
                        r["attack"],
                        r["n"],
                        b,
                        m,
                        r["eps"],
                        s,
                        ";".join(r["flags"]),
                        " | ".join(r["reasons"]),
                        r["run_id"],
                        r["selection"],  # (last: the columns before it stay where they were)
                    ]
                )
            )
    return buf.getvalue()


def to_json(board: dict[str, Any]) -> str:
    return json.dumps(json_safe(board), indent=2, ensure_ascii=False)


def to_html(board: dict[str, Any]) -> str:
    """One self-contained page: sortable tables (click a header) and a filter box."""
    e = html.escape
    parts = []
    for i, t in enumerate(board["tables"]):
        parts.append(
            _html_table(
                f"t{i}",
                t["title"],
                f"Samples per model: {', '.join(map(str, t['samples']))}",
                t["commands"],
                _table_header(t),
                [_table_cells(t, r) for r in t["rows"]],
                [r["reasons"] for r in t["rows"]],
                sort_col=len(t["attacks"]) + 3,
            )
        )
    groups = _decision_groups(board)
    for j, (title, (_, rows)) in enumerate(zip(_decision_titles(groups), groups, strict=True)):
        budgets, eps_text = rows[0]["budgets"], format_eps(rows[0]["eps"])
        body = [_decision_cells(r) for r in rows]
        parts.append(
            _html_table(
                f"d{j}",
                title,
                _decision_caption(rows, eps_text),
                _decision_commands(rows),
                _decision_header(budgets, eps_text),
                body,
                [r["reasons"] for r in rows],
                sort_col=None,
            )
        )
    return _fill(_PAGE, {"TITLE": e("robustkit leaderboard"), "BODY": "\n".join(parts)})


def _fill(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``{{NAME}}`` replaced by ``values[NAME]``, in one pass over the
    template only: a placeholder inside a value (a model file named ``{{TITLE}}.py``) is the
    user's text and stays as it is."""
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: values[m.group(1)], template)


def _html_table(tid, title, caption, commands, header, rows, reasons, sort_col) -> str:
    e = html.escape
    if commands:
        caption_html = f"{e(caption)}. Command(s): " + "; ".join(
            f"<code>{e(c)}</code>" for c in commands
        )
    else:
        caption_html = f"{e(caption)}."
    head = "".join(f'<th data-col="{k}" tabindex="0">{e(h)}</th>' for k, h in enumerate(header))
    body = []
    for cells, why in zip(rows, reasons, strict=True):
        tds = "".join(f"<td>{e(c)}</td>" for c in cells)
        title_attr = f' title="{e(" | ".join(why))}"' if why else ""
        cls = ' class="flagged"' if why else ""
        body.append(f"<tr{cls}{title_attr}>{tds}</tr>")
    default = f' data-default-sort="{sort_col}"' if sort_col is not None else ""
    return (
        f"<section><h2>{e(title)}</h2><p>{caption_html}</p>"
        f'<table id="{tid}"{default}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></section>'
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{TITLE}}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:1em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{cursor:pointer;background:#f3f3f3}
th.asc::after{content:" ▲"} th.desc::after{content:" ▼"}
tr.flagged td{background:#fff4e5}
#filter{font-size:1em;padding:.3em;width:20em}
</style></head><body>
<h1>{{TITLE}}</h1>
<p>Sorted by worst-case robust accuracy; click a column header to sort, type to filter rows.
Rows marked UNRELIABLE failed a sanity check (hover for why).</p>
<input id="filter" type="search" placeholder="filter rows, e.g. resnet" aria-label="filter">
{{BODY}}
<script>
(function () {
  function key(text) {
    var t = text.trim().replace('%', '');
    if (t === '-' ) return -Infinity;
    if (t === '\\u221e') return Infinity;
    var v = parseFloat(t);
    return (isNaN(v) || !/^[-+]?[0-9.]+(e[-+]?[0-9]+)?$/i.test(t)) ? t.toLowerCase() : v;
  }
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col].textContent), y = key(b.cells[col].textContent);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.className = ''; });
    table.tHead.rows[0].cells[col].className = dir > 0 ? 'asc' : 'desc';
    table.setAttribute('data-sorted', col + ':' + dir);
  }
  function applyFilter(text) {
    var q = text.toLowerCase();
    Array.prototype.forEach.call(document.querySelectorAll('tbody tr'), function (tr) {
      tr.style.display = tr.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
      tr.setAttribute('data-hidden', tr.style.display === 'none' ? '1' : '0');
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      function go() {
        var cur = table.getAttribute('data-sorted') || '';
        var dir = cur === col + ':-1' ? 1 : -1;
        sortTable(table, col, dir);
      }
      th.addEventListener('click', go);
      th.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') go(); });
    });
  });
  // the order the page comes in (highest first), as a click would mark it: one click reverses it
  Array.prototype.forEach.call(document.querySelectorAll('table[data-default-sort]'), function (table) {
    var col = parseInt(table.getAttribute('data-default-sort'), 10);
    table.tHead.rows[0].cells[col].className = 'desc';
    table.setAttribute('data-sorted', col + ':-1');
  });
  var box = document.getElementById('filter');
  box.addEventListener('input', function () { applyFilter(box.value); });
  // state from the address, e.g. page.html#sort=t0:2:1&filter=resnet (for links and tests)
  var params = new URLSearchParams(location.hash.slice(1));
  if (params.get('sort')) {
    var s = params.get('sort').split(':');
    var t = document.getElementById(s[0]);
    if (t) sortTable(t, parseInt(s[1], 10), parseInt(s[2], 10));
  }
  if (params.get('filter') !== null) { box.value = params.get('filter'); applyFilter(box.value); }
})();
</script>
</body></html>
"""


RENDERERS = {"markdown": to_markdown, "csv": to_csv, "json": to_json, "html": to_html}
EXTENSIONS = {"markdown": "md", "csv": "csv", "json": "json", "html": "html"}
