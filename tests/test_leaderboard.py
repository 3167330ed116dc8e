"""Leaderboards: equal to an independent recomputation from the stored rows; every format; the
HTML page sorts, filters and escapes in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from dataclasses import replace

import numpy as np
import pytest

from robustkit.leaderboard import build, to_csv, to_html, to_json, to_markdown
from robustkit.runner import RunConfig, run_evaluation
from robustkit.store import Store


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("lb") / "results.db"
    for model in ("mnist/cnn-tiny-at", "mnist/cnn-a-at"):
        for eps in (0.1, 0.3):
            run_evaluation(
                RunConfig(
                    model=model,
                    n=60,
                    batch_size=30,
                    eps=eps,
                    device="cpu",
                    attacks=("fgsm", "pgd:steps=5"),
                ),
                db=db,
                progress=False,
            )
    run_evaluation(
        RunConfig(
            model="mnist/cnn-tiny-at",
            n=4,
            correct_only=True,
            norm="l2",
            attacks=("cgba",),
            queries=60,
            batch_size=4,
            device="cpu",
            sanity=False,
        ),
        db=db,
        progress=False,
    )
    return db


def test_leaderboard_equals_independent_recomputation(filled_db):
    with Store.open(filled_db) as store:
        board = build(store)
    conn = sqlite3.connect(filled_db)
    # MNIST L∞ 0.1 and 0.3; the CGBA-only run is in the decision table only
    assert [t["title"] for t in board["tables"]] == ["MNIST, L∞ ε = 0.1", "MNIST, L∞ ε = 0.3"]
    for table in board["tables"]:
        worst = [r["worst_case"] for r in table["rows"]]
        assert worst == sorted(worst, reverse=True)
        for row in table["rows"]:
            rid = row["run_id"]
            ys = conn.execute(
                "SELECT idx, y = clean_pred FROM samples WHERE run_id = ?", (rid,)
            ).fetchall()
            ok = dict(ys)
            assert row["n"] == len(ys)
            assert row["clean_accuracy"] == sum(ok.values()) / len(ok)
            for attack, value in row["robust"].items():
                rob = conn.execute(
                    "SELECT idx, robust FROM results WHERE run_id = ? AND attack = ?", (rid, attack)
                ).fetchall()
                assert value == sum(r for _, r in rob) / len(rob)
                for idx, r in rob:
                    ok[idx] = ok[idx] and bool(r)
            assert row["worst_case"] == sum(ok.values()) / len(ok)
    (dec,) = board["decision"]
    trajs = [
        json.loads(t)
        for (t,) in conn.execute(
            "SELECT trajectory FROM results WHERE run_id = ? AND attacked = 1", (dec["run_id"],)
        )
    ]
    at_60 = sorted(min((d for q, d in t if q <= 60), default=float("inf")) for t in trajs)
    assert dec["median_l2"][-1] == pytest.approx((at_60[1] + at_60[2]) / 2)


def test_targeted_runs_stay_out_of_the_robust_accuracy_tables(tmp_path):
    """A targeted run leaves the untargeted run's row in place (its figures only bound robustness
    above), and a targeted label-only attack gets a decision row of its own."""
    db = tmp_path / "results.db"
    common = dict(model="mnist/cnn-tiny-at", n=20, batch_size=20, eps=0.3, device="cpu")
    untargeted = run_evaluation(
        RunConfig(attacks=("pgd:steps=5",), **common), db=db, progress=False
    )
    targeted = run_evaluation(
        RunConfig(attacks=("pgd:steps=5",), targeted=True, **common), db=db, progress=False
    )
    assert targeted["run_id"] != untargeted["run_id"]
    decision = dict(common, n=4, batch_size=4, norm="l2", eps=None, queries=60, sanity=False)
    run_evaluation(RunConfig(attacks=("cgba", "cgba-h"), **decision), db=db, progress=False)
    with Store.open(db) as store:
        board = build(store)
    (table,) = board["tables"]
    assert [r["run_id"] for r in table["rows"]] == [untargeted["run_id"]]
    assert sorted(r["attack"] for r in board["decision"]) == ["cgba", "cgba-h (targeted)"]


def test_a_decision_row_whose_spec_says_targeted_is_marked_once(tmp_path):
    """`--attack hsja:targeted=true` made the decision row "hsja:targeted=true (targeted)" in
    every format; it is marked only where its label does not say so, as a column header is."""
    from .fake_store import CGBA, add_run

    hit = [(True, False, 1.0, [[5, 1.0]])] * 2
    targeted = {**CGBA, "targeted": True}
    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "a", {"hsja:targeted=true": (targeted, hit), "cgba-h": (targeted, hit)}, n=2)
        board = build(store)
    assert sorted(r["attack"] for r in board["decision"]) == [
        "cgba-h (targeted)",
        "hsja:targeted=true",
    ]
    for text in (to_markdown(board), to_csv(board), to_html(board)):
        assert "targeted=true (targeted)" not in text


def test_a_targeted_attack_within_a_run_counts_in_its_worst_case(tmp_path):
    """A sample that a targeted attack moved to its target is misclassified: in a run with an
    untargeted attack too, the targeted attack is a column and its successes lower the worst
    case, exactly as in the run's own report (the two once disagreed: 75% on the board, 1% in
    the report, for this run at n = 100)."""
    db = tmp_path / "results.db"
    report = run_evaluation(
        RunConfig(
            model="mnist/cnn-tiny-at",
            n=20,
            batch_size=20,
            eps=0.4,
            device="cpu",
            attacks=("fgsm", "pgd:steps=10,targeted=true"),
        ),
        db=db,
        progress=False,
    )
    with Store.open(db) as store:
        (table,) = build(store)["tables"]
    (row,) = table["rows"]
    assert table["attacks"] == ["fgsm", "pgd:steps=10,targeted=true"]
    assert row["worst_case"] == report["robust_accuracy"]
    assert row["worst_case"] <= min(row["robust"].values())
    # the targeted attack fools samples FGSM left standing: the old board ignored them
    assert row["worst_case"] < row["robust"]["fgsm"]


def test_a_row_shows_the_run_with_the_most_samples_then_the_latest(tmp_path):
    """A quick small run once replaced a larger one on the board (the latest run won: a 5-image
    FGSM after the 20-image PGD made the row n = 5). The row now shows the run with the most
    samples, and among those the latest; decision rows likewise keep the most images."""
    db = tmp_path / "results.db"
    common = dict(model="mnist/cnn-tiny-at", eps=0.3, device="cpu")
    large = run_evaluation(
        RunConfig(n=20, batch_size=20, attacks=("pgd:steps=5",), **common), db=db, progress=False
    )
    run_evaluation(RunConfig(n=5, batch_size=5, attacks=("fgsm",), **common), db=db, progress=False)
    decision = dict(common, norm="l2", eps=None, queries=60, sanity=False)
    cgba4 = run_evaluation(
        RunConfig(n=4, batch_size=4, attacks=("cgba",), **decision), db=db, progress=False
    )
    run_evaluation(
        RunConfig(n=2, batch_size=2, attacks=("cgba",), **decision), db=db, progress=False
    )
    with Store.open(db) as store:
        board = build(store)
    (table,) = board["tables"]
    (row,) = table["rows"]
    assert (row["run_id"], row["n"]) == (large["run_id"], 20)
    assert table["samples"] == [20] and table["attacks"] == ["pgd:steps=5"]
    (dec,) = board["decision"]
    assert dec["run_id"] == cgba4["run_id"]
    # a later run of the same size takes the row
    later = run_evaluation(
        RunConfig(n=20, batch_size=20, attacks=("fgsm",), **common), db=db, progress=False
    )
    with Store.open(db) as store:
        (table,) = build(store)["tables"]
    assert [(r["run_id"], r["n"]) for r in table["rows"]] == [(later["run_id"], 20)]


def test_preset_run_writes_every_format_and_an_interrupt_says_how_to_resume(tmp_path, monkeypatch):
    """`robustkit leaderboard run` (the README's main job) on one small model; interrupted at its
    second run it keeps the first and says how to go on; the same command then resumes."""
    from click.testing import CliRunner

    import robustkit.runner as runner
    from robustkit.cli import cli

    out, db = tmp_path / "board", tmp_path / "results.db"
    args = ["leaderboard", "run", "--preset", "quick", "--models", "mnist/cnn-tiny-at"]
    args += ["--out", str(out), "--db", str(db), "--no-progress"]
    real, calls = runner.execute, []

    def interrupted_at_the_second_run(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runner, "execute", interrupted_at_the_second_run)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 130, result.output
    assert (
        "interrupted at run 2 of 2" in result.output and "rerun the same command" in result.output
    )
    with Store.open(db) as store:
        assert [r["status"] for r in store.runs()] == ["finished"]
    monkeypatch.setattr(runner, "execute", real)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "2 of 2 runs done" in result.output and "mnist/cnn-tiny-at" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        f"leaderboard.{ext}" for ext in ("csv", "html", "json", "md")
    ]


def test_group_options_before_run_are_passed_on_or_refused(tmp_path, monkeypatch):
    """`leaderboard --db X --out Y --format csv run ...` once ran with the default store, the
    default directory and Markdown: the group's options were dropped without a word. They now
    apply to `run`; given on both sides with different values, they are a one-line error."""
    from click.testing import CliRunner

    import robustkit.presets as presets
    from robustkit.cli import cli

    tiny = RunConfig(model="mnist/cnn-tiny-at", n=10, batch_size=10, attacks=("fgsm",))
    monkeypatch.setattr(presets, "preset_runs", lambda *a, **k: [tiny])
    monkeypatch.chdir(tmp_path)
    db, out = tmp_path / "given.db", tmp_path / "given-out"
    args = ["leaderboard", "--db", str(db), "--out", str(out), "--format", "csv"]
    result = CliRunner().invoke(cli, [*args, "run", "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    with Store.open(db, create=False) as store:
        assert [r["status"] for r in store.runs()] == ["finished"]
    assert sorted(p.name for p in out.iterdir()) == [
        f"leaderboard.{ext}" for ext in ("csv", "html", "json", "md")
    ]
    assert not (tmp_path / "leaderboard-quick").exists()
    printed = [ln for ln in result.stdout.splitlines() if ln.startswith("table,")]
    assert printed and printed[0].startswith("table,dataset,norm,eps,model")
    # the same value on both sides is fine; two different ones are refused, naming the option
    for option, outer, inner in (
        ("--db", str(db), str(tmp_path / "other.db")),
        ("--out", str(out), str(tmp_path / "other-out")),
        ("--format", "csv", "json"),
    ):
        result = CliRunner().invoke(
            cli, ["leaderboard", option, outer, "run", option, inner, "--no-progress"]
        )
        assert result.exit_code == 2 and "Traceback" not in result.output
        (line,) = [ln for ln in result.output.splitlines() if ln.strip()]
        assert line.startswith("Error: ") and option in line and "give it once" in line, line
    assert not (tmp_path / "other.db").exists()


def test_formats(filled_db):
    with Store.open(filled_db) as store:
        board = build(store)
    md = to_markdown(board)
    assert "## MNIST, L∞ ε = 0.3" in md and "| mnist/cnn-tiny-at |" in md and "Decision-based" in md
    # success rates are percentages, like the accuracies, and their headers say so
    assert "| success % @60 (L2 ≤ 2) |" in md and "share of images (%)" in md
    rows = list(csv.reader(io.StringIO(to_csv(board))))
    assert rows[0][:3] == ["table", "dataset", "norm"] and any(
        r and r[0] == "decision" for r in rows[1:]
    )
    data = json.loads(to_json(board))
    assert data["tables"][0]["rows"][0]["model"].startswith("mnist/")


def _fake_store(path, model_name):
    """Runs of ``model_name`` and two other models on two CIFAR-10 samples (worst-case robust
    accuracy 100%, 50% and 0%), each stored with a command that holds HTML."""
    from .fake_store import add_run

    store = Store.open(path)
    for k, (name, robust) in enumerate(
        [(model_name, (1, 1)), ("alpha-model", (1, 0)), ("zeta-model", (0, 0))]
    ):
        per_sample = [(not r, bool(r), 0.03) for r in robust]
        add_run(
            store,
            f"run{k}",
            {"pgd": ({"norm": "linf", "eps": 8 / 255}, per_sample)},
            model=name,
            dataset="cifar10",
            eps=8 / 255,
            command="robustkit evaluate <b>bold</b>",
            n=2,
        )
    return store


EVIL = "<script>document.title='pwned'</script>"


def test_html_escapes_everything(tmp_path):
    with _fake_store(tmp_path / "x.db", EVIL) as store:
        page = to_html(build(store))
    assert (
        EVIL not in page and "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    )
    md = to_markdown(build(Store.open(tmp_path / "x.db")))
    assert "| <script>" not in md and "| &lt;script&gt;" in md


def test_html_leaves_placeholders_in_user_text_alone(tmp_path):
    """The page's {{TITLE}} was filled in after the tables were: a model file named
    {{TITLE}}.py showed as 'robustkit leaderboard.py'."""
    name = "/tmp/{{TITLE}}.py:build"
    with _fake_store(tmp_path / "x.db", name) as store:
        page = to_html(build(store))
    assert f"<td>{name}</td>" in page and "robustkit leaderboard.py" not in page
    assert page.count("robustkit leaderboard") == 2  # the page's title and heading only


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _dump_dom(browser: str, url: str, tmp_path) -> str:
    args = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / ('profile' + str(time.time_ns()))}",
        "--virtual-time-budget=3000",
        "--dump-dom",
        url,
    ]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _rows(dom: str) -> list[tuple[str, bool]]:
    body = dom.split("<tbody>")[1].split("</tbody>")[0]
    rows = []
    for tr in re.findall(r"<tr[^>]*>.*?</tr>", body, flags=re.S):
        first = re.search(r"<td>(.*?)</td>", tr, flags=re.S).group(1)
        rows.append((first, 'data-hidden="1"' in tr or "display: none" in tr))
    return rows


def test_html_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed here (CI installs it)")
    with _fake_store(tmp_path / "x.db", EVIL) as store:
        page = tmp_path / "board.html"
        page.write_text(to_html(build(store)), encoding="utf-8")
    url = page.as_uri()
    dom = _dump_dom(browser, url, tmp_path)
    assert "<title>robustkit leaderboard</title>" in dom  # the injected script did not run
    escaped = "&lt;script&gt;document.title='pwned'&lt;/script&gt;"
    assert [r[0] for r in _rows(dom)] == [escaped, "alpha-model", "zeta-model"]  # worst case, desc
    by_name = _rows(_dump_dom(browser, url + "#sort=t0:0:-1", tmp_path))
    assert [r[0] for r in by_name] == ["zeta-model", "alpha-model", escaped]  # model name, desc
    filtered = _rows(_dump_dom(browser, url + "#filter=zeta", tmp_path))
    assert [name for name, hidden in filtered if not hidden] == ["zeta-model"]


# ------------------------------------------------------------------------------------------------
# Renderers on hand-made stores: escaping, formula injection, decision rows with their defenses
# ------------------------------------------------------------------------------------------------
XSS_MODEL = "q`<img src=x onerror=alert(1)>.py:build"


def _code_spans(md: str) -> tuple[list[str], str]:
    """CommonMark code spans of one text (contents, stripped of one padding space each side) and
    the text outside them: a run of k backticks opens a span that the next run of exactly k
    backticks closes."""
    spans, outside, i = [], [], 0
    while i < len(md):
        if md[i] != "`":
            outside.append(md[i])
            i += 1
            continue
        k = len(re.match(r"`+", md[i:]).group())
        close = next(
            (m for m in re.finditer(r"`+", md[i + k :]) if len(m.group()) == k),
            None,
        )
        if close is None:  # no closing run: literal backticks
            outside.append(md[i : i + k])
            i += k
            continue
        body = md[i + k : i + k + close.start()]
        if len(body) > 1 and body[0] == " " and body[-1] == " " and body.strip():
            body = body[1:-1]
        spans.append(body)
        i += k + close.end()
    return spans, "".join(outside)


def _live_html(md: str) -> list[str]:
    """Raw HTML tags a Markdown renderer would pass through: '<' + letter outside code spans,
    not escaped by a backslash."""
    _, outside = _code_spans(md)
    return re.findall(r"(?<!\\)<[A-Za-z/!?]", outside)


def test_markdown_commands_are_code_spans_and_titles_and_headers_are_escaped(tmp_path):
    """A backtick in a model path closed the command's code span and raw HTML went live
    (`<img src=x onerror=...>`); titles and headers were not escaped at all."""
    from .fake_store import LINF, add_run, robust

    command = f"robustkit evaluate --model '{XSS_MODEL}' --attack pgd --eps 0.3"
    with Store.open(tmp_path / "x.db") as store:
        add_run(
            store,
            "r1",
            {"pgd<b>x</b>": (LINF, robust("rf"))},
            model=XSS_MODEL,
            dataset="d<i>&amp",
            command=command,
            n=2,
        )
        md = to_markdown(build(store))
    assert _live_html(md) == [], md
    spans, _ = _code_spans(md)
    assert command in spans
    assert "## d&lt;i&gt;&amp;amp, L∞ ε = 0.3" in md
    assert "| pgd&lt;b&gt;x&lt;/b&gt; % |" in md
    from robustkit.leaderboard import _md_escape

    assert _md_escape("a & b\nc | d\r\ne") == "a &amp; b c \\| d e"


def test_csv_text_cells_cannot_start_a_formula(tmp_path):
    """A user-controlled model path like '=HYPERLINK(...)' opened as a formula in a spreadsheet;
    text cells starting with = + - @ tab or CR now start with ', numbers stay numbers."""
    from .fake_store import CGBA, LINF, add_run, robust

    evil = '=HYPERLINK("http://evil")'
    with Store.open(tmp_path / "x.db") as store:
        add_run(
            store,
            "r1",
            {"fgsm": (LINF, robust("rf"))},
            model=evil,
            training="+cmd|' /C calc'!A0",
            defenses={"@SUM(1)": {}},
            n=2,
        )
        add_run(
            store,
            "r2",
            {"cgba": (CGBA, [(True, False, 1.0, [[5, 1.0]])] * 2)},
            model="-2+3",
            defenses={"\tx": {}},
            n=2,
        )
        text = to_csv(build(store))
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    cells = [c for r in rows for c in r]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    head, first = rows[0], rows[1]
    assert first[head.index("model")] == "'" + evil
    assert first[head.index("training")].startswith("'+")
    assert first[head.index("defenses")] == "'@SUM(1)"
    assert float(first[head.index("eps")]) == 0.3 and float(first[head.index("n")]) == 2
    dec_head = next(r for r in rows if r[0] == "decision" and r[1] == "dataset")
    dec = rows[-1]
    assert dec[dec_head.index("model")] == "'-2+3" and dec[dec_head.index("defenses")] == "'\tx"
    assert float(dec[dec_head.index("median_l2")]) == 1.0


def test_decision_rows_show_their_defenses_and_every_table_its_commands(tmp_path):
    """A defended and an undefended decision row of one model looked identical in Markdown,
    HTML and CSV; the HTML page did not state its commands; two decision sections of one data
    set (other budgets) had the same heading."""
    from .fake_store import CGBA, add_run

    row = [(True, False, 1.0, [[5, 1.0]])] * 2
    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "plain", {"cgba": (CGBA, row)}, model="m", n=2, command="cmd-plain")
        add_run(
            store,
            "defended",
            {"cgba": (CGBA, row)},
            model="m",
            defenses={"bit-depth:bits=4": {"bits": 4}},
            n=2,
            command="cmd-defended",
        )
        add_run(
            store,
            "other-budget",
            {"cgba": ({**CGBA, "max_queries": 30}, row)},
            model="m2",
            n=2,
            command="cmd-30",
        )
        board = build(store)
    md = to_markdown(board)
    table_rows = [ln for ln in md.splitlines() if ln.startswith("| m |")]
    assert len(table_rows) == 2 and len(set(table_rows)) == 2
    assert any("| bit-depth:bits=4 |" in ln for ln in table_rows)
    headings = [ln for ln in md.splitlines() if ln.startswith("## Decision-based")]
    assert len(headings) == 2 and len(set(headings)) == 2
    page = to_html(board)
    assert "<td>bit-depth:bits=4</td>" in page
    for cmd in ("cmd-plain", "cmd-defended", "cmd-30"):
        assert f"<code>{cmd}</code>" in page
    rows = [r for r in csv.reader(io.StringIO(to_csv(board))) if r]
    dec_head = next(r for r in rows if r[0] == "decision" and r[1] == "dataset")
    assert "defenses" in dec_head
    defenses = {
        r[dec_head.index("defenses")] for r in rows if r[0] == "decision" and r[1] != "dataset"
    }
    assert defenses == {"", "bit-depth:bits=4"}


def test_html_states_the_command_of_each_table(tmp_path):
    with _fake_store(tmp_path / "x.db", "m") as store:
        page = to_html(build(store))
    assert "<code>robustkit evaluate &lt;b&gt;bold&lt;/b&gt;</code>" in page


def test_only_test_runs_on_all_images_of_the_zoo_checkpoint_make_a_zoo_row(tmp_path):
    """A train-split run, a run with another checkpoint and a run of only the correctly
    classified images each replaced the model's row (they have more samples, or came later),
    under the zoo model's name and training label."""
    from .fake_store import LINF, add_run, robust

    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "test", {"fgsm": (LINF, robust("rrff"))}, model="m", training="PGD-AT")
        add_run(store, "train", {"fgsm": (LINF, robust("rrrrr"))}, model="m", n=5, split="train")
        add_run(
            store,
            "correct",
            {"fgsm": (LINF, robust("rrrrrr"))},
            model="m",
            n=6,
            config={"correct_only": True},
        )
        add_run(
            store,
            "own",
            {"fgsm": (LINF, robust("fffffff"))},
            model="m",
            n=7,
            config={"weights": "noisy.pt"},
            weights_sha256="abcdef0123456789" * 4,
        )
        rows = build(store)["tables"][0]["rows"]
    by_model = {r["model"]: r for r in rows}
    assert set(by_model) == {"m", "m (weights abcdef012345)"}
    assert by_model["m"]["run_id"] == "test" and by_model["m"]["worst_case"] == 0.5
    assert by_model["m"]["training"] == "PGD-AT"
    assert by_model["m (weights abcdef012345)"]["training"] == "own checkpoint"


def test_the_zoo_checkpoint_given_as_weights_is_the_zoo_model(tmp_path):
    """--weights naming the zoo's own file shares the zoo run (the same bytes), but whichever
    command was stored first decided its label: the plain zoo run showed on the leaderboard as
    'mnist/lenet5 (weights 551a11267982) | own checkpoint'."""
    from robustkit.zoo import model_info

    from .fake_store import LINF, add_run, robust

    info = model_info("mnist/lenet5")
    zoo_file = os.path.join(os.environ["ROBUSTKIT_WEIGHTS"], info["file"])
    db = tmp_path / "w.db"
    config = RunConfig(model="mnist/lenet5", n=8, attacks=("fgsm",), device="cpu", sanity=False)
    given = run_evaluation(replace(config, weights=zoo_file), db=db, progress=False)
    plain = run_evaluation(config, db=db, progress=False)
    assert given["run_id"] == plain["run_id"] and given["weights"] is plain["weights"] is None
    with Store.open(db) as store:
        (row,) = build(store)["tables"][0]["rows"]
        assert json.loads(store.get_run(plain["run_id"])["config"])["weights"] is None
    assert (row["model"], row["training"]) == ("mnist/lenet5", "standard")
    # a run stored so before keeps the file's path: it is the zoo model's row all the same
    with Store.open(tmp_path / "old.db") as store:
        add_run(
            store,
            "old",
            {"fgsm": (LINF, robust("rf"))},
            model="mnist/lenet5",
            n=2,
            config={"weights": zoo_file},
            weights_sha256=info["sha256"],
        )
        (row,) = build(store)["tables"][0]["rows"]
    assert (row["model"], row["training"]) == ("mnist/lenet5", "standard")


def test_a_steady_rise_with_eps_is_flagged(tmp_path):
    """Each ε step rose by one sample (within the tolerance) so no pair of neighbours was
    flagged; the rise from the first ε to the last is three samples."""
    from .fake_store import add_run

    with Store.open(tmp_path / "x.db") as store:
        for k, eps in enumerate((0.1, 0.2, 0.3, 0.4)):
            pattern = [(False, i < 50 + k, 0.0) for i in range(100)]
            add_run(store, f"r{k}", {"fgsm": ({"norm": "linf"}, pattern)}, eps=eps, n=100)
        tables = build(store)["tables"]
    assert all("rising_with_eps" in t["rows"][0]["flags"] for t in tables)


def test_flagged_decision_rows_give_their_reasons_and_sections_their_selection(tmp_path):
    """Markdown listed no reason for a flagged decision row and HTML did not mark it; a section
    mixing first-correct and all-image rows was captioned with the first row's selection."""
    from .fake_store import CGBA, add_run

    hit = (True, False, 1.0, [[4, 1.0]])
    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "a", {"cgba": (CGBA, [hit] * 2)}, model="all-images", n=2, checks=False)
        add_run(
            store,
            "b",
            {"cgba": (CGBA, [hit] * 2)},
            model="first-correct",
            n=2,
            config={"correct_only": True},
            checks=False,
        )
        store.write_checks("a", [("robust_above_clean", True, "robust above clean for cgba")])
        board = build(store)
    md, page = to_markdown(board), to_html(board)
    assert "- all-images, cgba: robust above clean for cgba" in md
    assert '<tr class="flagged" title="robust above clean for cgba">' in page
    assert "images: all (2 per model," in md and "images: first correctly classified (2" in md


def test_a_decision_row_carries_only_the_flags_that_concern_label_only_attacks(tmp_path):
    """A run of PGD and CGBA flagged for PGD without EOT on a randomized model (or for masked
    gradients, a label-only attack beating PGD, PGD not converged) marked its CGBA decision row
    UNRELIABLE too, though a label-only attack sees neither gradients nor scores; stores written
    before (a CGBA-only run told to use EOT) read so too. The robust-accuracy row keeps every
    flag, and a flag about the model or every attack (robust above clean) stays on both."""
    from .fake_store import CGBA, add_run, robust

    hit = (True, False, 1.0, [[4, 1.0]])
    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "a", {"pgd": ({"norm": "linf"}, robust("rrff")), "cgba": (CGBA, [hit] * 4)})
        add_run(store, "b", {"cgba": (CGBA, [hit] * 4)}, model="label-only", checks=False)
        gradient_only = [
            (name, True, f"{name} failed")
            for name in (
                "randomized_outputs",
                "probability_outputs",
                "gradient_masking",
                "blackbox_beats_whitebox",
                "more_steps_help",
            )
        ]
        store.write_checks("a", gradient_only)
        store.write_checks("b", gradient_only[:1])
        board = build(store)
        (row,) = board["tables"][0]["rows"]
        assert sorted(row["flags"]) == sorted(name for name, _, _ in gradient_only)
        assert [(r["flags"], r["reasons"]) for r in board["decision"]] == [([], [])] * 2
        store.write_checks("a", [("robust_above_clean", True, "robust above clean for pgd")])
        board = build(store)
    assert "robust_above_clean" in board["tables"][0]["rows"][0]["flags"]
    by_model = {r["model"]: r for r in board["decision"]}
    assert by_model["m"]["flags"] == ["robust_above_clean"]
    assert by_model["m"]["reasons"] == ["robust above clean for pgd"]
    assert "- label-only, cgba" not in to_markdown(board)


def test_markdown_escapes_emphasis_but_not_words_with_underscores():
    from robustkit.leaderboard import _md_escape

    assert _md_escape("_x_ ~~s~~ more_steps_help") == "\\_x\\_ \\~\\~s\\~\\~ more_steps_help"


def test_a_store_damaged_past_its_first_page_is_refused_untouched(tmp_path, filled_db):
    """Such a store opened, gave a raw 'malformed' traceback on the first query, and an
    evaluation wrote into it."""
    from robustkit.errors import RobustkitError

    db = tmp_path / "z.db"
    with Store.open(filled_db) as store:  # one file, no WAL beside it
        store.conn.execute(f"VACUUM INTO '{db}'")
    data = bytearray(db.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\x07" * 4096
    db.write_bytes(bytes(data))
    with pytest.raises(RobustkitError, match="cannot be read as a database.*left untouched"):
        Store.open(db)
    assert db.read_bytes() == bytes(data)


def test_the_leaderboard_reads_one_snapshot_of_the_store(tmp_path, monkeypatch):
    """Its reads were separate statements: a run deleted by another process (a --fresh rerun)
    between the run list and that run's rows crashed the build with 'no run'."""
    import robustkit.runner as runner

    from .fake_store import LINF, add_run

    db = tmp_path / "r.db"
    with Store.open(db) as store:
        for rid, model in (("first", "a"), ("second", "b")):
            add_run(store, rid, {"pgd": (LINF, [(False, True, 0.1)] * 4)}, model=model)
    real = runner.summarize

    def summarize_while_another_deletes(store, run_id):
        with Store.open(db) as other:  # another process's --fresh, between two reads
            with other.transaction() as conn:
                conn.execute("DELETE FROM runs WHERE run_id = 'second'")
        return real(store, run_id)

    monkeypatch.setattr(runner, "summarize", summarize_while_another_deletes)
    with Store.open(db) as store:
        board = build(store)
        assert sorted(r["model"] for r in board["tables"][0]["rows"]) == ["a", "b"]
        assert [r["run_id"] for r in store.runs()] == ["first"]  # after it: the deletion


def test_each_run_records_the_command_that_reproduces_it(tmp_path, monkeypatch):
    """The tables quote each run's command; `--models` and `--seed` (part of the run) were left
    out of it, so the quoted command made other runs."""
    from click.testing import CliRunner

    import robustkit.presets as presets
    from robustkit.cli import cli

    tiny = RunConfig(model="mnist/cnn-tiny-at", n=10, batch_size=10, attacks=("fgsm",), seed=3)
    monkeypatch.setattr(presets, "preset_runs", lambda *a, **k: [tiny])
    db = tmp_path / "r.db"
    args = ["leaderboard", "run", "--models", "mnist/cnn-tiny*", "--seed", "3", "--device", "cpu"]
    args += ["--db", str(db), "--out", str(tmp_path / "b"), "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with Store.open(db, create=False) as store:
        (run,) = store.runs()
    assert run["command"] == (
        "robustkit leaderboard run --preset quick --models 'mnist/cnn-tiny*' --seed 3 --device cpu"
    )


@pytest.mark.parametrize("name", ["leaderboard.json", "leaderboard.csv"])
@pytest.mark.parametrize("command", [[], ["run"]])
def test_out_never_writes_over_the_results_store(tmp_path, monkeypatch, name, command):
    """`leaderboard --db DIR/leaderboard.json --out DIR` wrote the JSON board over the store
    (every run in it lost; `leaderboard run` did so after its runs): a --out whose files
    include the store, or one of SQLite's files beside it, is refused before anything runs."""
    from click.testing import CliRunner

    import robustkit.presets as presets
    from robustkit.cli import cli

    from .fake_store import add_run

    tiny = RunConfig(model="mnist/cnn-tiny-at", n=2, batch_size=2, attacks=("fgsm",))
    monkeypatch.setattr(presets, "preset_runs", lambda *a, **k: [tiny])
    db = tmp_path / name
    with Store.open(db) as store:
        add_run(store, "run0", {"pgd": ({"norm": "linf"}, [(False, True, 0.3)])}, n=1)
    before = db.read_bytes()
    args = ["leaderboard", *command, "--db", str(db), "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args + (["--no-progress"] if command else []))
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    (line,) = [ln for ln in result.output.splitlines() if ln.strip()]
    assert line.startswith("Error: ") and "--out" in line and str(db) in line, line
    assert db.read_bytes() == before
    with Store.open(db, create=False) as store:
        assert [r["run_id"] for r in store.runs()] == ["run0"]


def test_preset_run_refuses_a_device_that_is_not_there_before_any_run(tmp_path):
    """`leaderboard run --device cuda` on a machine without one (or a typo, `--device gpu`)
    failed every run in turn, one line each (50 for the full preset), then rewrote the board;
    it is now one error before anything is run or written."""
    import torch
    from click.testing import CliRunner

    from robustkit.cli import cli

    out, db = tmp_path / "board", tmp_path / "results.db"
    for device in ("gpu", "cuda:99"):
        args = ["leaderboard", "run", "--models", "mnist/*", "--device", device]
        result = CliRunner().invoke(cli, [*args, "--out", str(out), "--db", str(db)])
        assert result.exit_code == 2 and "Traceback" not in result.output
        (line,) = [ln for ln in result.output.splitlines() if ln.strip()]
        assert line.startswith("Error: ") and repr(device) in line, line
        if device == "cuda:99" and not torch.cuda.is_available():  # the option, not device=
            assert line.endswith("(--device cpu)"), line
        assert not out.exists() and not db.exists()


def test_markdown_captions_name_commands_only_where_runs_recorded_one(tmp_path):
    """Runs made from Python (run_evaluation, the notebook) record no command: the decision
    section's caption ended in an empty "Command(s): "."""
    from .fake_store import CGBA, LINF, add_run, robust

    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "wb", {"pgd": (LINF, robust("rf"))}, n=2, command="")
        add_run(
            store, "dec", {"cgba": (CGBA, [(True, False, 1.0, [[5, 1.0]])] * 2)}, n=2, command=""
        )
        md = to_markdown(build(store))
    assert "Command(s)" not in md
    assert (
        "Samples per model: 2.\n" in md
        and "(2 per model, those classified correctly: the attacked ones).\n" in md
    )


def test_decision_caption_lists_the_image_counts_in_numeric_order(tmp_path):
    """The counts were sorted as text: "(10, 4 per model)"."""
    from .fake_store import CGBA, add_run

    with Store.open(tmp_path / "x.db") as store:
        for rid, n in (("a", 4), ("b", 10)):
            row = [(True, False, 1.0, [[5, 1.0]])] * n
            add_run(store, rid, {"cgba": (CGBA, row)}, model=rid, n=n)
        md = to_markdown(build(store))
    assert "(4, 10 per model," in md


def test_preset_run_of_no_cifar10_or_mnist_model_says_which_models_it_takes(tmp_path):
    """`--models 'torchvision/*'` said "no zoo model matches ...; see `robustkit models`", which
    lists those very models: the presets take only the CIFAR-10 and MNIST ones."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    args = [
        "leaderboard",
        "run",
        "--models",
        "torchvision/resnet18",
        "--db",
        str(tmp_path / "r.db"),
    ]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "board")])
    assert result.exit_code == 2
    (line,) = [ln for ln in result.output.splitlines() if ln.strip()]
    assert "no CIFAR-10 or MNIST zoo model matches 'torchvision/resnet18'" in line, line


def test_a_rise_of_one_sample_with_eps_is_not_flagged_whatever_the_rounding(tmp_path):
    """7 of 10 robust at the smaller ε and 8 of 10 at the larger is a one-sample rise, which the
    README leaves as within the runs' randomness: 0.7 + 1/10 rounds to 0.7999..., below 0.8,
    and the rise was flagged."""
    from .fake_store import LINF, add_run, robust

    with Store.open(tmp_path / "x.db") as store:
        for k, (eps, pattern) in enumerate(((0.1, "rrrrrrrfff"), (0.2, "rrrrrrrrff"))):
            add_run(store, f"r{k}", {"fgsm": (LINF, robust(pattern))}, eps=eps, n=10)
        tables = build(store)["tables"]
    assert [t["rows"][0]["worst_case"] for t in tables] == [0.7, 0.8]
    assert not any(t["rows"][0]["flags"] for t in tables)


def test_runs_of_one_defense_stored_before_and_after_full_digit_texts_read_alike(tmp_path):
    """A run's stored defense text kept 6 significant digits (input-noise:sigma=0.0313725...)
    until 2026-11-29, every digit since: a new run of the configuration of an older one made a
    second leaderboard row, the rise of robust accuracy with ε went unseen across them, and the
    runs list and the notebook frames showed two texts. Every reader takes the text from the
    stored parameters (of any stored form), so they read alike and exact."""
    from robustkit.cli_runs import run_rows
    from robustkit.results import Results

    from .fake_store import add_run, robust

    params = {"sigma": 8 / 255, "votes": 25}
    old = [["input-noise:sigma=0.0313725,votes=25", params]]
    new = [["input-noise:sigma=0.03137254901960784,votes=25", params]]
    oldest = {"input-noise:sigma=8/255": params}  # the mapping form of stores before 2026-11-27
    exact = "input-noise:sigma=0.03137254901960784,votes=25"
    fgsm = {"norm": "linf"}
    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "old-a", {"fgsm": (fgsm, robust("rfff"))}, model="a", eps=0.1, defenses=old)
        add_run(store, "new-a", {"fgsm": (fgsm, robust("rrrf"))}, model="a", eps=0.3, defenses=new)
        b_old = robust("rrff")
        add_run(store, "old-b", {"fgsm": (fgsm, b_old)}, model="b", eps=0.1, defenses=oldest)
        b_new = robust("rrffrrff")
        add_run(store, "new-b", {"fgsm": (fgsm, b_new)}, model="b", eps=0.1, n=8, defenses=new)
        tables = {t["eps"]: t for t in build(store)["tables"]}
        listed = {r["run_id"]: r["defenses"] for r in run_rows(store)}
        res = Results(store)
        frame_runs = dict(zip(res.runs["run_id"], res.runs["defenses"], strict=True))
        frame_results = set(res.results()["defenses"])
    rows = {r["model"]: r for r in tables[0.1]["rows"]}
    assert len(tables[0.1]["rows"]) == 2 and rows["b"]["run_id"] == "new-b"
    assert {r["defenses"] for t in tables.values() for r in t["rows"]} == {exact}
    assert "rising_with_eps" in tables[0.3]["rows"][0]["flags"]
    assert "rising_with_eps" in rows["a"]["flags"]
    assert listed == {rid: [exact] for rid in ("old-a", "new-a", "old-b", "new-b")}
    assert frame_runs == {rid: ", ".join(texts) for rid, texts in listed.items()}  # as text
    assert frame_results == {exact}


def test_a_store_of_unfinished_runs_only_says_so_and_how_to_finish_them(tmp_path):
    """`robustkit leaderboard` over a store whose runs were all stopped before their end printed
    the page's header alone, as if the store were empty; it says how many runs are unfinished,
    that none is finished, and how to finish them (the printed board stays as it was: the JSON
    still parses)."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    from .fake_store import add_run, robust

    db = tmp_path / "x.db"
    with Store.open(db) as store:
        for rid in ("a", "b"):
            add_run(store, rid, {"fgsm": ({"norm": "linf"}, robust("rf"))}, n=2, finished=False)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"tables": [], "decision": []}
    notes = [ln for ln in result.stderr.splitlines() if "unfinished" in ln]
    assert len(notes) == 1, result.stderr
    assert "2 unfinished runs and no finished one" in notes[0]
    assert "rerun" in notes[0] and f"robustkit runs list --db {db}" in notes[0]
    # (runs list shows no command; runs show ID does)
    assert f"robustkit runs show ID --db {db} shows one's command" in notes[0], notes[0]
    with Store.open(db) as store:
        add_run(store, "c", {"fgsm": ({"norm": "linf"}, robust("rf"))}, n=2)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db)])
    assert result.exit_code == 0 and "unfinished" not in result.output


def test_the_html_decision_caption_says_what_the_markdown_one_says(tmp_path):
    """The HTML decision-table caption said "images: first correctly classified." alone: not
    the images per model nor what the columns measure, which the Markdown caption gives."""
    from .fake_store import CGBA, add_run

    with Store.open(tmp_path / "x.db") as store:
        for rid, n in (("a", 4), ("b", 10)):
            row = [(True, False, 1.0, [[5, 1.0]])] * n
            add_run(store, rid, {"cgba": (CGBA, row)}, model=rid, n=n, command="c <&> d")
        board = build(store)
    md, page = to_markdown(board), to_html(board)
    caption = next(ln for ln in md.splitlines() if ln.startswith("Median L2"))
    said = caption.partition(" Command(s):")[0]
    assert "images: all (4, 10 per model, those" in said
    assert f"<p>{said.replace('&', '&amp;')} Command(s): <code>c &lt;&amp;&gt; d</code></p>" in page


def test_out_failing_after_its_check_says_what_fits_the_command(tmp_path, monkeypatch):
    """`robustkit leaderboard --out DIR`, which computes nothing, said "every run is kept in
    the store: nothing is computed again" when writing failed after the pre-check: words for
    `leaderboard run`."""
    from click.testing import CliRunner

    import robustkit.cli_leaderboard as cli_lb
    from robustkit.cli import cli

    from .fake_store import add_run, robust

    db, blocker = tmp_path / "x.db", tmp_path / "file"
    blocker.write_text("")
    with Store.open(db) as store:
        add_run(store, "a", {"fgsm": ({"norm": "linf"}, robust("rf"))}, n=2)
    monkeypatch.setattr(cli_lb, "check_out", lambda out, db: None)  # (it changed since)
    args = ["leaderboard", "--db", str(db), "--out", str(blocker / "board")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: cannot write --out") and "pass another --out" in line
    assert "computed" not in line


def test_a_label_only_check_flags_a_robust_accuracy_row_only_with_a_label_only_column(tmp_path):
    """randomized_labels judges a run's label-only attacks (their verdicts single draws on a
    randomized model without votes). An L∞ run of pgd:eot=10 and a minimum-norm CGBA (in the
    decision table alone) had its PGD row marked unreliable for CGBA's sake; it keeps the flag
    where a label-only attack with an ε is one of the row's columns, and the decision row
    always."""
    from .fake_store import CGBA, add_run, robust

    hit = (True, False, 1.0, [[4, 1.0]])
    flag = [("randomized_labels", True, "a label takes one draw")]
    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "a", {"pgd": ({"norm": "linf"}, robust("rrff")), "cgba": (CGBA, [hit] * 4)})
        store.write_checks("a", flag)
        cgba_eps = {**CGBA, "eps": 0.5}
        add_run(
            store,
            "b",
            {"pgd": ({"norm": "l2"}, robust("rrff")), "cgba": (cgba_eps, [hit] * 4)},
            model="l2",
            norm="l2",
            eps=0.5,
        )
        store.write_checks("b", flag)
        board = build(store)
    rows = {r["model"]: r for t in board["tables"] for r in t["rows"]}
    linf = next(t for t in board["tables"] if t["norm"] == "linf")
    assert "cgba" not in linf["attacks"]  # (minimum-norm: in the decision table alone)
    assert rows["m"]["flags"] == [] and rows["m"]["reasons"] == []
    assert rows["l2"]["flags"] == ["randomized_labels"]
    assert {r["model"]: r["flags"] for r in board["decision"]} == {
        "m": ["randomized_labels"],
        "l2": ["randomized_labels"],
    }


def test_the_decision_caption_of_all_images_counts_the_attacked_ones():
    """A label-only attack leaves the images the model already gets wrong alone, and its row
    (images, medians, success shares) is over the others; the caption of an all-images section
    said "images: all (8 per model)" of a run of 12 images, 4 of them misclassified."""
    from robustkit.leaderboard import _decision_caption

    said = _decision_caption([{"n": 8, "selection": "all"}], "0.5")
    assert "images: all (8 per model, those classified correctly: the attacked ones)" in said
    first = _decision_caption([{"n": 8, "selection": "first correctly classified"}], "0.5")
    assert first.endswith("images: first correctly classified (8 per model)")


def test_preset_run_stops_at_a_store_it_cannot_write(tmp_path, monkeypatch):
    """A store that refuses writes (a full disk, a read-only file) failed each run in turn,
    and `leaderboard run` went on to the next: every later run computed its first shard (for
    the full preset, minutes of attacks each) only to fail alike. It now stops at the first
    such run, in one line that says which, with the earlier runs kept; the same command then
    resumes."""
    from dataclasses import replace

    from click.testing import CliRunner

    import robustkit.evaluation as evaluation
    import robustkit.presets as presets
    import robustkit.store as store_module
    from robustkit.cli import cli

    configs = [
        RunConfig(model="mnist/cnn-tiny-at", n=2, batch_size=2, attacks=("fgsm",), seed=s)
        for s in range(3)
    ]
    monkeypatch.setattr(presets, "preset_runs", lambda *a, **k: [replace(c) for c in configs])
    computed = []
    real_shard = evaluation.evaluate_shard

    def counted(*args):
        computed.append(args)
        return real_shard(*args)

    monkeypatch.setattr(evaluation, "evaluate_shard", counted)
    real_write, writes = Store.write_shard, []

    def full_from_the_second(self, *args):
        writes.append(1)
        if len(writes) > 1:
            with self.transaction():  # (as SQLite refuses the shard's write)
                raise sqlite3.OperationalError("database or disk is full")
        return real_write(self, *args)

    db, out = tmp_path / "r.db", tmp_path / "board"
    args = ["leaderboard", "run", "--db", str(db), "--out", str(out), "--no-progress"]
    with monkeypatch.context() as m:
        m.setattr(store_module.Store, "write_shard", full_from_the_second)
        result = CliRunner().invoke(cli, [*args, "--device", "cpu"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    error = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
    assert len(error) == 1 and "run 2 of 3" in error[0] and "disk is full" in error[0], error
    assert len(computed) == 2  # not the third run
    with Store.open(db) as store:
        assert [r["status"] for r in store.runs()] == ["finished", "running"]
    result = CliRunner().invoke(cli, [*args, "--device", "cpu"])
    assert result.exit_code == 0 and "3 of 3 runs done" in result.output, result.output


def test_an_unknown_preset_in_python_is_a_one_line_robustkit_error():
    """preset_runs("Quick") raised a bare ValueError ("unknown preset 'Quick'") that named
    neither the presets there are nor that names match in any case elsewhere."""
    from robustkit.errors import InputError
    from robustkit.presets import preset_runs

    with pytest.raises(InputError, match="unknown preset 'fast'; use one of quick, full"):
        preset_runs("fast")
    assert [c.model for c in preset_runs("QUICK", "mnist/lenet5")] == ["mnist/lenet5"] * 2


def test_a_store_whose_finished_runs_make_no_row_says_why_and_what_run_would(tmp_path):
    """`robustkit leaderboard` over a store whose finished runs are all left off the tables (a
    train-split run, one of only the correctly classified images, a targeted one, one without
    an attack) printed the page's header alone, with no word why; it says so in one line on
    stderr, with how many runs each reason leaves off and what run makes a row. A store where
    some runs are left off says how many and why; one where every run makes a row says nothing."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    from .fake_store import CGBA, LINF, add_run, robust

    db = tmp_path / "x.db"
    targeted = {"norm": "linf", "targeted": True}
    with Store.open(db) as store:
        add_run(store, "train", {"fgsm": (LINF, robust("rf"))}, n=2, split="train")
        add_run(store, "train2", {"cgba": (CGBA, robust("rf"))}, n=2, split="train")
        add_run(
            store, "correct", {"fgsm": (LINF, robust("rf"))}, n=2, config={"correct_only": True}
        )
        add_run(store, "targeted", {"pgd": (targeted, robust("rf"))}, n=2)
        add_run(store, "clean", {}, n=2)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"tables": [], "decision": []}
    (note,) = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert "5 finished runs and none makes a row" in note, note
    for why in (
        "2 on the train split",
        "1 of only the correctly classified images (--correct-only)",
        "1 of targeted attacks only",
        "1 without an attack",
    ):
        assert why in note, (why, note)
    assert "--attack pgd" in note and "--attack cgba" in note, note
    # some runs make rows: the note counts the others
    with Store.open(db) as store:
        add_run(store, "ok", {"fgsm": (LINF, robust("rf"))}, n=2)
        add_run(store, "cgba", {"cgba": (CGBA, robust("rf"))}, n=2, norm="l2", eps=2.0)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db)])
    assert result.exit_code == 0, result.output
    (note,) = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert note.startswith("note: 5 of 7 finished runs make no row"), note
    assert "2 on the train split" in note and "1 without an attack" in note, note
    # every run makes a row: no note
    with Store.open(db) as store:
        store.delete_runs(["train", "train2", "correct", "targeted", "clean"])
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db)])
    assert result.exit_code == 0 and "note" not in result.stderr, result.stderr


def test_runs_at_the_same_shown_eps_share_one_table(tmp_path):
    """ε = 8/255 given as a float32 (0.0313725508…, as ``torch.tensor(8 / 255).item()`` gives
    it) made a table of its own beside the 8/255 one, both titled "CIFAR-10, L∞ ε = 8/255":
    the models were not compared. A table is the ε its title shows; one a few digits apart is
    another table."""
    from .fake_store import LINF, add_run, robust

    with Store.open(tmp_path / "x.db") as store:
        add_run(
            store, "a", {"pgd": (LINF, robust("rrff"))}, model="a", dataset="cifar10", eps=8 / 255
        )
        f32 = float(np.float32(8 / 255))
        add_run(store, "b", {"pgd": (LINF, robust("rfff"))}, model="b", dataset="cifar10", eps=f32)
        add_run(
            store, "c", {"pgd": (LINF, robust("ffff"))}, model="c", dataset="cifar10", eps=0.0314
        )
        tables = build(store)["tables"]
    assert [(t["title"], [r["model"] for r in t["rows"]]) for t in tables] == [
        ("CIFAR-10, L∞ ε = 8/255", ["a", "b"]),
        ("CIFAR-10, L∞ ε = 0.0314", ["c"]),
    ]
    assert tables[0]["eps"] == round(8 / 255, 10)


@pytest.mark.parametrize(
    "eps", [8 / 255, float(np.float32(8 / 255)), 0.03137255, 0.0314, 0.3, 1e-6, 1 / 3, 2.0, 1.0]
)
def test_a_table_eps_is_shown_as_its_runs_eps_is(eps):
    """A table's ε is the value its title shows (kept as a number, not read back from the
    title's text): 8/255 as a float32 or as 0.03137255 is 8/255, any other ε itself."""
    from robustkit.leaderboard import _table_eps
    from robustkit.threat import format_eps

    assert format_eps(_table_eps(eps)) == format_eps(eps)
    assert _table_eps(eps) == round(8 / 255 if format_eps(eps) == "8/255" else eps, 10)


def test_an_empty_store_and_unfinished_runs_beside_left_off_ones_say_why_there_is_no_row(
    tmp_path,
):
    """A store without runs (every one deleted) printed the page's header alone with no word
    why; and over finished runs that make no row beside unfinished ones, the note said what run
    would make a row but not that the unfinished ones would, once finished."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    from .fake_store import LINF, add_run, robust

    db = tmp_path / "x.db"
    with Store.open(db) as store:
        add_run(store, "gone", {"fgsm": (LINF, robust("rf"))}, n=2)
        store.delete_runs(["gone"])
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db)])
    assert result.exit_code == 0, result.output
    (note,) = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert f"{db} holds no run" in note and "robustkit evaluate" in note, note
    with Store.open(db) as store:
        add_run(store, "train", {"fgsm": (LINF, robust("rf"))}, n=2, split="train")
        add_run(store, "running", {"fgsm": (LINF, robust("rf"))}, n=2, finished=False)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db)])
    (note,) = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert "1 finished run and none makes a row" in note, note
    assert "1 unfinished run" in note and "rerun" in note, note


def test_a_leaderboard_run_that_cannot_print_its_board_writes_out_and_says_runs_are_stored(
    tmp_path, monkeypatch
):
    """`leaderboard run > /dev/full` ended in a traceback after every run was stored, without
    writing --out: it writes --out and says the runs are stored and how to print the board."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    from .helpers import full_stdout

    out, db = tmp_path / "board", tmp_path / "results.db"
    args = ["leaderboard", "run", "--preset", "quick", "--models", "mnist/cnn-tiny-at"]
    args += ["--out", str(out), "--db", str(db), "--no-progress", "--device", "cpu"]
    full_stdout(monkeypatch)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    (error,) = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
    assert "No space left on device" in error and f"runs are stored in {db}" in error, error
    assert (out / "leaderboard.md").is_file()


def test_a_leaderboard_that_cannot_be_printed_still_writes_out(tmp_path, monkeypatch):
    """`robustkit leaderboard --out DIR > /dev/full` stopped at the print without writing DIR."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    from .helpers import full_stdout

    db, out = tmp_path / "r.db", tmp_path / "board"
    Store.open(db).close()
    full_stdout(monkeypatch)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 2 and "cannot write the output" in result.output, result.output
    assert (out / "leaderboard.md").is_file()


def test_the_leaderboard_notes_read_the_run_list_once(tmp_path, monkeypatch):
    """The two stderr notes (no finished run; finished runs that make no row) read the store's
    run list up to three times more after the board's own read, for one decision: finished ones,
    then finished ones again, then unfinished ones. The command reads it twice: once for the
    board, once for the notes, which say what they said."""
    from click.testing import CliRunner

    from robustkit.cli import cli

    from .fake_store import LINF, add_run, robust

    db = tmp_path / "x.db"
    with Store.open(db) as store:
        add_run(store, "train", {"fgsm": (LINF, robust("rf"))}, n=2, split="train")
        add_run(store, "running", {"fgsm": (LINF, robust("rf"))}, n=2, finished=False)
    real, reads = Store.runs, []

    def counted(self, *args, **kwargs):
        reads.append(args or kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "runs", counted)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db)])
    assert result.exit_code == 0, result.output
    (note,) = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert "1 finished run and none makes a row of the leaderboard: 1 on the train" in note, note
    assert "its 1 unfinished run makes none until finished" in note, note
    assert len(reads) == 2, reads


def test_the_notes_describe_the_store_the_board_was_built_from(tmp_path, monkeypatch):
    """The notes read the run list after the board's snapshot ended: a run that finished in
    between (another process's evaluation) left a board without rows and no note at all, as
    the notes saw a finished run that makes a row. They read the board's snapshot."""
    from click.testing import CliRunner

    import robustkit.leaderboard as leaderboard
    from robustkit.cli import cli

    from .fake_store import LINF, add_run, robust

    db = tmp_path / "x.db"
    with Store.open(db) as store:
        add_run(store, "late", {"fgsm": (LINF, robust("rf"))}, n=2, finished=False)
    real = leaderboard.build

    def finished_by_another_process_after_the_build(store, *args, **kwargs):
        board = real(store, *args, **kwargs)
        with Store.open(db) as other:
            other.finish_run("late")
        return board

    monkeypatch.setattr(leaderboard, "build", finished_by_another_process_after_the_build)
    result = CliRunner().invoke(cli, ["leaderboard", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"tables": [], "decision": []}
    (note,) = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert "1 unfinished run and no finished one" in note, note


def test_a_defended_row_without_a_training_label_shows_its_defenses_alone(tmp_path):
    """A plug-in model registered without a training label, evaluated with a defense, showed
    " + bit-depth:bits=4" in its training / defense cell (Markdown and HTML): a dangling
    joiner before the defense."""
    from .fake_store import LINF, add_run, robust

    with Store.open(tmp_path / "x.db") as store:
        add_run(
            store,
            "a",
            {"fgsm": (LINF, robust("rf"))},
            model="plug/a",
            training="",
            defenses={"bit-depth:bits=4": {"bits": 4}},
            n=2,
        )
        add_run(store, "b", {"fgsm": (LINF, robust("rf"))}, model="plug/b", training="", n=2)
        board = build(store)
    md, page = to_markdown(board), to_html(board)
    assert "| plug/a | bit-depth:bits=4 |" in md and "| plug/b |  |" in md, md
    assert "<td>plug/a</td><td>bit-depth:bits=4</td>" in page


def test_html_first_click_on_the_sorted_column_reverses_it(tmp_path):
    """The page comes sorted by worst-case robust accuracy, highest first, but its script did
    not know it: the column showed no ▼ and the first click on its header sorted it highest
    first again (nothing moved); only a second click gave lowest first. The page's default
    sort now marks that column as sorted, so one click reverses it."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed here (CI installs it)")
    with _fake_store(tmp_path / "x.db", "top-model") as store:
        page_text = to_html(build(store))
    assert '<table id="t0" data-default-sort="4">' in page_text  # worst case %
    page = tmp_path / "board.html"
    page.write_text(page_text, encoding="utf-8")
    dom = _dump_dom(browser, page.as_uri(), tmp_path)
    assert 'data-col="4" tabindex="0" class="desc">worst case %' in dom
    click = "<script>document.querySelector('#t0 th[data-col=\"4\"]').click()</script>"
    page.write_text(page_text.replace("</body>", click + "</body>"), encoding="utf-8")
    clicked = _dump_dom(browser, page.as_uri(), tmp_path)
    assert [r[0] for r in _rows(clicked)] == ["zeta-model", "alpha-model", "top-model"]


def test_csv_decision_rows_say_which_images_they_are_of(tmp_path):
    """The Markdown and HTML boards put first-correctly-classified and all-image decision rows
    in sections of their own, captioned so; the CSV rows of both read alike (the JSON has
    "selection"), so a reader of the CSV compared figures of two populations unawares."""
    from .fake_store import CGBA, add_run

    hit = [(True, False, 1.0, [[5, 1.0]])] * 2
    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "a", {"cgba": (CGBA, hit)}, model="all-images", n=2)
        add_run(
            store,
            "b",
            {"cgba": (CGBA, hit)},
            model="first-correct",
            n=2,
            config={"correct_only": True},
        )
        text = to_csv(build(store))
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    head = next(r for r in rows if r[0] == "decision" and r[1] == "dataset")
    body = [dict(zip(head, r, strict=True)) for r in rows if r[0] == "decision" and r != head]
    assert {(r["model"], r["selection"]) for r in body} == {
        ("all-images", "all"),
        ("first-correct", "first correctly classified"),
    }


@pytest.mark.parametrize(
    ("model", "item"),
    [("# big", "- \\# big: why"), ("+ plus", "- \\+ plus: why"), ("- m", "- \\- m: why")]
    + [("1. first", "- 1\\. first: why"), ("2) two", "- 2\\) two: why")]
    + [("#5 m", "- #5 m: why"), ("-m", "- -m: why"), ("2.5 m", "- 2.5 m: why")],
)
def test_a_flag_item_starting_like_markdown_block_syntax_stays_text(tmp_path, model, item):
    """The "Flags:" list puts each flagged row's model first in a list item: a plug-in model
    named "# big" made "- # big: ..." (a heading inside the item), "1. first" a numbered list
    in it, "+ plus" or "- m" a nested list; such a start is escaped there (only such a one)."""
    from .fake_store import LINF, add_run, robust

    with Store.open(tmp_path / "x.db") as store:
        add_run(store, "a", {"fgsm": (LINF, robust("rr"))}, model=model, n=2)
        store.write_checks("a", [("robust_above_clean", True, "why")])
        md = to_markdown(build(store))
    assert item in md.splitlines(), md


def test_an_linf_attack_with_a_query_budget_is_not_reported_as_label_only(tmp_path, monkeypatch):
    """Found by review: a stored attack was taken as label-only (decision-based) wherever its
    parameters had ``max_queries``, so a user's L∞ attack with a query budget (a score-based
    one such as Square) got a "median L2" table in its report and a row in the leaderboard's
    "Decision-based attacks (label-only, L2)" table with "success % (L2 ≤ 0.3)" of its L∞ ε.
    Label-only attacks are L2 only (robustkit.attack refuses others), so one whose norm is
    another is reported as the threat-model attack it is."""
    import torch

    from robustkit.attack import Attack
    from robustkit.registry import ATTACKS
    from robustkit.runner import summarize

    class Budgeted(Attack):
        """A random ±ε step, with a query budget (as a score-based attack has)."""

        name = "budgeted"

        def __init__(self, norm="linf", eps=0.3, max_queries=100, targeted=False, seed=0):
            super().__init__(norm=norm, eps=eps, targeted=targeted, seed=seed)
            self.max_queries = max_queries

        def _attack(self, ctx, x, y, target):
            ctx.logits(x)
            return x + self.eps * torch.randn(x.shape, generator=ctx.generator).sign()

    entry = type("E", (), {"name": "budgeted", "obj": Budgeted, "metadata": {}})()
    monkeypatch.setitem(ATTACKS._entries, "budgeted", entry)
    db = tmp_path / "r.db"
    config = RunConfig(model="mnist/lenet5", n=4, attacks=("budgeted",), device="cpu")
    run_id = run_evaluation(config, db=db, progress=False)["run_id"]
    with Store.open(db) as store:
        (row,) = summarize(store, run_id)["attacks"].values()
        board = build(store)
    assert row["family"] == "gradient" and "decision" not in row, row
    assert row["params"]["max_queries"] == 1000  # (--queries: a budget, as before)
    assert board["decision"] == [] and len(board["tables"]) == 1, board
    assert "budgeted" in board["tables"][0]["attacks"], board["tables"][0]
