"""benchmarks/decision.py's result files: merged partial runs keep each row's own command."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """A fresh module of ``benchmarks/NAME.py``."""
    spec = importlib.util.spec_from_file_location(f"{name}_bench", ROOT / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_benchmark():
    return load_script("decision")


def row(l2: float) -> dict:
    curve = {"queries": [10, 100], "median_l2": [2 * l2, l2]}
    return {"median_l2": {"100": l2}, "seconds_per_image": 1.0, "curve": curve}


def part(command: str, attacks: dict) -> dict:
    model = {"forward_images_per_s": 100.0, "forward_batch": 16, "attacks": attacks}
    return {"n": 2, "budgets": [100], "command": command, "models": {"m": model}}


def tiny_classifier(n: int):
    """A small seeded convolutional classifier of 8×8 images, ``n`` random images and its own
    labels for them (so every image starts correctly classified)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, 10),
    ).eval()
    x = torch.rand(n, 3, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def test_the_note_is_elided_from_the_recorded_command():
    bench = load_benchmark()
    line = bench.command_line(["--n", "2", "--note", "a long remark", "--out", "x.json"])
    # pasted as is from the repository's root after `make setup`
    assert line == ".venv/bin/python benchmarks/decision.py --n 2 --note … --out x.json"
    assert (
        bench.command_line(["--note=remark"]) == ".venv/bin/python benchmarks/decision.py --note=…"
    )


def test_a_trial_run_leaves_the_published_results_alone(tmp_path, monkeypatch):
    """Without --readme the default result file and plot are local ones (git ignores them): a
    2-image trial run replaced the published plot. With --readme they are the published ones."""
    bench = load_benchmark()
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "decision.json").write_text(json.dumps(part("published", {})))
    trial = tmp_path / "trial.json"
    trial.write_text(json.dumps(part("trial", {"cgba": row(0.3)})))
    bench.main(["--n", "2", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0",
                "--speed-repeats", "0", "--serial-images", "0", "--merge", str(trial)])  # fmt: skip
    local = tmp_path / "results" / "local"
    assert sorted(p.name for p in local.iterdir()) == ["decision.json", "decision.png"]
    published = json.loads((tmp_path / "results" / "decision.json").read_text())
    assert published["command"] == "published" and not (tmp_path / "decision.png").exists()
    # rendering the file again (nothing run, nothing merged) keeps the run's own header: it
    # was replaced by the rendering command, date, machine and threads
    trial_out = local / "decision.json"
    before = json.loads(trial_out.read_text())
    bench.main(["--n", "2", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0",
                "--speed-repeats", "0", "--serial-images", "0", "--note", "x"])  # fmt: skip
    after = json.loads(trial_out.read_text())
    for key in ("command", "date", "machine", "threads"):
        assert after[key] == before[key], key
    assert after["note"] == "x"
    # with nothing to plot, no plot (it raised from matplotlib)
    bench.main(["--n", "3", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0",
                "--speed-repeats", "0", "--serial-images", "0", "--out", str(tmp_path / "e.json"),
                "--plot", str(tmp_path / "e.png")])  # fmt: skip
    assert (tmp_path / "e.json").exists() and not (tmp_path / "e.png").exists()


def test_merged_rows_keep_their_own_command_and_replaced_rows_drop_theirs(tmp_path, capsys):
    bench = load_benchmark()
    out = tmp_path / "decision.json"
    base = part("old full run", {"hsja": row(0.5), "cgba": row(0.4)})
    base["models"]["m"]["attacks"]["hsja"]["command"] = "old full run"
    base["models"]["m"]["attacks"]["cgba"]["command"] = "old cgba run"
    out.write_text(json.dumps(base))
    new = tmp_path / "new.json"
    new.write_text(json.dumps(part("new cgba run", {"cgba": row(0.3)})))
    common = ["--n", "2", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0"]
    plot = tmp_path / "plot.png"
    bench.main(
        [
            *common,
            "--speed-repeats",
            "0",
            "--merge",
            str(new),
            "--out",
            str(out),
            "--plot",
            str(plot),
        ]
    )
    report = json.loads(out.read_text())
    attacks = report["models"]["m"]["attacks"]
    assert attacks["cgba"]["command"] == "new cgba run"
    assert attacks["cgba"]["median_l2"] == {"100": 0.3}
    assert attacks["hsja"]["command"] == "old full run"
    assert bench.sources(report) == ["old full run", "new cgba run"]
    text = capsys.readouterr().out
    assert "`new cgba run`" in text and "old cgba run" not in text
    assert plot.stat().st_size > 0
    bare = part("unused", {"geoda": row(0.2)})
    del bare["command"]
    bare_file = tmp_path / "bare.json"
    bare_file.write_text(json.dumps(bare))
    bench.main(
        [*common, "--speed-repeats", "0", "--merge", str(bare_file), "--out", str(out), "--plot="]
    )
    report = json.loads(out.read_text())
    assert report["models"]["m"]["attacks"]["geoda"]["command"] == (
        f"{bare_file} (no command recorded)"
    )


def speed(device: str, images: int) -> dict:
    draw = {"before": [1000.0, 16], "after": [1000.0, 16], "queries_per_s": 500.0, "ratio": 0.5}
    return {
        "images": images,
        "queries": 100,
        "runs": [draw],
        "median_ratio": 0.5,
        "median_queries_per_s": 500.0,
        "one_at_a_time": {"images": 1, "queries": 100, "queries_per_s": 50.0},
        "device": device,
    }


def test_speed_runs_of_another_size_merge_and_attack_rows_of_another_size_do_not(tmp_path, capsys):
    bench = load_benchmark()
    out = tmp_path / "decision.json"
    base = part("cpu run", {"cgba": row(0.4)})
    base["speed"] = {"m": {**speed("CPU", 2), "command": "cpu speed"}}
    out.write_text(json.dumps(base))
    gpu = part("gpu run", {})
    gpu["n"] = 1000
    gpu["speed"] = {"m, NVIDIA H200, 1000 images": speed("NVIDIA H200", 1000)}
    gpu_file = tmp_path / "gpu.json"
    gpu_file.write_text(json.dumps(gpu))
    args = ["--n", "2", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0"]
    args += ["--speed-repeats", "0", "--out", str(out), "--plot="]
    bench.main([*args, "--merge", str(gpu_file)])
    report = json.loads(out.read_text())
    assert set(report["speed"]) == {"m", "m, NVIDIA H200, 1000 images"}
    assert report["models"]["m"]["attacks"]["cgba"]["median_l2"] == {"100": 0.4}
    text = capsys.readouterr().out
    assert "CGBA speed on m, 2 images: 1 repeat of 100 queries per image" in text
    assert "CGBA speed on m, NVIDIA H200, 1000 images: 1 repeat of 100 queries" in text
    assert "worth **10.0×** on NVIDIA H200" in text
    rows = part("other run", {"cgba": row(0.1)})
    rows["n"] = 1000
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(rows))
    with pytest.raises(SystemExit, match="attack rows run with other --n, --budgets or --seed"):
        bench.main([*args, "--merge", str(rows_file)])
    assert json.loads(out.read_text())["models"]["m"]["attacks"]["cgba"]["median_l2"] == {
        "100": 0.4
    }


def test_warm_split_times_the_attack_against_the_model_and_a_linear_classifier(capsys):
    """decision_profile.py --warm-split: the same attack against the model and against a linear
    classifier of the same images, and the first operations after a forward pass; the model's
    forward is unwrapped again afterwards."""
    import robustkit

    profile = load_script("decision_profile")
    model, x, y = tiny_classifier(6)
    attack = robustkit.get_attack("cgba", max_queries=60, batch_size=32)
    profile.warm_split(attack, model, x, y, repeats=1)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in out] == [
        "against the model",
        "against a linear classifier",
        "right after a forward pass of 32 rows",
    ]
    assert all("for 360 queries" in line for line in out[:2]), out
    assert "forward" not in vars(model)  # the timing wrapper is gone


def test_speed_runs_tell_the_forward_passes_from_the_attacks_own_work(capsys):
    """A speed run times the model's forward passes inside the attack (every row the attack has
    labelled: its counted queries, plus the model check, the clean predictions and the final
    re-check, all outside the budget) and the README line reports them next to the share of
    raw; CPU entries of another image count than the benchmark's are keyed apart."""
    bench = load_benchmark()
    model, x, y = tiny_classifier(5)
    sp = bench.speed_runs(
        model, x, y, queries=40, repeats=1, seed=0, serial_images=0, raw_seconds=0.005
    )
    (run,) = sp["runs"]
    counted = round(run["queries_per_s"] * run["seconds"])
    assert counted == 5 * 40
    assert run["forward_rows"] == counted + 2 + 5 + 5  # + model check, clean, re-check
    assert 0 < run["forward_s"] < run["seconds"]
    report = {"n": 5, "budgets": [40], "models": {}, "speed": {"m, 5 images": sp}}
    text = bench.markdown(
        {**report, "seed": 0, "threads": 1, "machine": "x", "date": "d", "command": "c"}
    )
    assert "CGBA speed on m, 5 images: 1 repeat of 40 queries per image" in text
    assert "Inside the attack the forward passes ran at" in text
    assert f"s of {run['seconds']:.2f} s per run" in text
    assert bench.speed_key("m", "CPU", bench.DEFAULT_N) == "m"
    assert bench.speed_key("m", "CPU", 500) == "m, 500 images"
    assert bench.speed_key("m", "NVIDIA H200", 100) == "m, NVIDIA H200, 100 images"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--n", "0"], "--n must be at least 1, got 0"),
        (["--budgets", "250,abc"], "--budgets must be whole numbers separated by commas"),
        (["--budgets", "0,100"], "--budgets must be positive query counts"),
        (["--budgets", "100,250,100"], "--budgets names a budget twice"),
        (["--attacks", "cgba,foo"], "unknown attack 'foo' for --attacks"),
        (["--models", "cifar10/nope"], "unknown model 'cifar10/nope' for --models"),
        (["--models", "mnist/lenet5"], "--models takes CIFAR-10 models: 'mnist/lenet5' is not"),
        (["--models", "torchvision/resnet18"], "'torchvision/resnet18' is not one"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--speed-repeats", "-1"], "--speed-repeats must be at least 0"),
        (["--targeted-pairs", "1"], "--targeted-pairs must be 0 or at least 2"),
        (["--device", "cuda"], "ART's and Foolbox's attacks run on the CPU only"),
    ],
)
def test_bad_command_lines_stop_before_anything_runs(args, needle, tmp_path, capsys):
    bench = load_benchmark()
    out = tmp_path / "never.json"
    with pytest.raises(SystemExit) as stop:
        bench.main([*args, "--out", str(out), "--plot="])
    assert stop.value.code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1], err


def test_fresh_keeps_the_rows_it_does_not_recompute_and_another_seed_starts_over(tmp_path):
    """--fresh once emptied the whole file (a run of one attack dropped every other row); rows
    of another --seed were reused and labelled with the new seed."""
    bench = load_benchmark()
    out = tmp_path / "decision.json"
    out.write_text(json.dumps({**part("earlier", {"hsja": row(0.4)}), "seed": 0}))
    args = ["--n", "2", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0"]
    args += ["--speed-repeats", "0", "--out", str(out), "--plot="]
    bench.main([*args, "--fresh"])
    assert json.loads(out.read_text())["models"]["m"]["attacks"]["hsja"]["median_l2"] == {
        "100": 0.4
    }
    with pytest.raises(SystemExit):  # (its rows would be lost: refused, see below)
        bench.main([*args, "--seed", "7"])
    bench.main([*args, "--seed", "7", "--fresh"])
    report = json.loads(out.read_text())
    assert report["seed"] == 7 and report["models"] == {}


@pytest.mark.parametrize("peer", ["run_art", "run_foolbox"])
def test_peer_rows_are_seeded(peer):
    """ART's and Foolbox's HopSkipJump rows were unseeded draws (ART's start search seeds itself
    from the OS): a rerun of the published ART row moved by 8.6%. Now --seed fixes them."""
    import torch

    bench = load_benchmark()
    model, x, y = tiny_classifier(2)
    run = getattr(bench, peer)
    first, again, other = (run(model, x, y, 80, seed)[0] for seed in (0, 0, 1))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(
        a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, other, strict=True)
    )


@pytest.mark.parametrize(
    "script, args",
    [
        ("decision.py", ["--attacks", "cgba", "--targeted-pairs", "0", "--speed-repeats", "0"]),
        ("decision_profile.py", ["--models", "cifar10/resnet20", "--repeats", "1"]),
        ("whitebox.py", ["--n", "8", "--repeats", "1", "--auto-n", "0"]),
    ],
)
def test_benchmarks_without_weights_or_data_end_in_one_line(script, args, tmp_path):
    """Missing weights or data are a user's mistake: one line naming the fix, as the CLI says it
    (the benchmarks printed the error at the end of a traceback)."""
    import os
    import subprocess
    import sys

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "ROBUSTKIT_OFFLINE": "1", "ROBUSTKIT_HOME": str(tmp_path)}
    env |= {"ROBUSTKIT_WEIGHTS": str(empty), "ROBUSTKIT_DATA": str(empty)}
    out = ["--out", str(tmp_path / "out.json")] if script == "decision.py" else []
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, *out],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "ROBUSTKIT_" in lines[0]  # names the fix


@pytest.mark.parametrize("flag", ["--merge", "--out"])
@pytest.mark.parametrize("content", [None, '{"n": 2', "[]"])
def test_an_unreadable_result_file_is_a_one_line_error(flag, content, tmp_path, capsys):
    """A --merge path with a typo, or a result file cut short (an interrupted write), ended in a
    FileNotFoundError or JSONDecodeError traceback."""
    bench = load_benchmark()
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    elif flag == "--out":
        bad.mkdir()  # there, but not a file
    out = ["--out", str(bad)] if flag == "--out" else ["--out", str(tmp_path / "o.json")]
    merge = ["--merge", str(bad)] if flag == "--merge" else []
    args = ["--n", "2", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0"]
    with pytest.raises(SystemExit) as stop:
        bench.main([*args, "--speed-repeats", "0", *out, *merge, "--plot="])
    message = str(stop.value.code)
    assert message.startswith(f"{flag} {bad}: not a") and "\n" not in message, message
    assert not (tmp_path / "o.json").exists()


def test_a_run_stopped_while_saving_keeps_the_saved_rows(tmp_path, monkeypatch):
    """The result file was rewritten in place after every pair: a run stopped (Ctrl-C, killed)
    during the write left a truncated file, losing every row saved before."""
    bench = load_benchmark()
    out = tmp_path / "decision.json"
    out.write_text(json.dumps(part("earlier", {"hsja": row(0.4)})))
    write = Path.write_text

    def stopped(self, text, *a, **k):  # half the text written, then the run is stopped
        write(self, text[: len(text) // 2], *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", stopped)
    args = ["--n", "2", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0"]
    with pytest.raises(KeyboardInterrupt):
        bench.main([*args, "--speed-repeats", "0", "--note", "x", "--out", str(out), "--plot="])
    monkeypatch.undo()
    saved = json.loads(out.read_text())
    assert saved["models"]["m"]["attacks"]["hsja"]["median_l2"] == {"100": 0.4}


def test_a_rerun_with_other_targeted_or_speed_settings_is_not_skipped(tmp_path, monkeypatch):
    """A rerun skipped a model's targeted row and speed entry whenever one was in --out, so
    --targeted-pairs, --speed-queries, --speed-repeats and --serial-images were ignored: the
    file kept (and the README reported) the earlier run's pairs, queries and repeats."""
    bench = load_benchmark()
    model, x, y = tiny_classifier(6)
    y[:3] = y.new_tensor([0, 1, 2])  # at least two classes to target
    calls = []

    def targeted(model, x, y, name, budgets, seed, target=None, raw_seconds=0.5):
        calls.append(("targeted", x.shape[0]))
        return {"success_rate": 1.0, "median_l2": {"100": 0.5}}

    def speed(model, x, y, queries, repeats, seed, serial_images=10, raw_seconds=0.5):
        calls.append(("speed", queries, repeats, serial_images))
        alone = {"images": min(serial_images, x.shape[0])} if serial_images else {}
        return {"queries": queries, "runs": [{}] * repeats, "one_at_a_time": alone}

    monkeypatch.setattr(bench.robustkit, "load_model", lambda name, device: model)
    monkeypatch.setattr(bench, "first_correct", lambda model, n: (x[:n], y[:n], list(range(n))))
    monkeypatch.setattr(bench, "forward_throughput", lambda *a, **k: (1000.0, 16))
    monkeypatch.setattr(bench, "run_pair", targeted)
    monkeypatch.setattr(bench, "speed_runs", speed)
    monkeypatch.setattr(bench, "markdown", lambda report: "")
    out = tmp_path / "decision.json"
    args = ["--n", "6", "--budgets", "100", "--models", "cifar10/resnet20", "--attacks", "none"]
    args += ["--out", str(out), "--plot="]

    def run(pairs, queries, repeats, serial):
        calls.clear()
        bench.main([*args, "--targeted-pairs", str(pairs), "--speed-queries", str(queries),
                    "--speed-repeats", str(repeats), "--serial-images", str(serial)])  # fmt: skip
        return list(calls)

    assert run(4, 50, 2, 2) == [("targeted", 4), ("speed", 50, 2, 2)]
    assert run(4, 50, 2, 2) == []  # the same settings: nothing to do
    assert run(6, 50, 2, 2) == [("targeted", 6)]
    assert run(6, 60, 2, 2) == [("speed", 60, 2, 2)]
    assert run(6, 60, 3, 2) == [("speed", 60, 3, 2)]
    assert run(6, 60, 3, 0) == [("speed", 60, 3, 0)]
    assert run(6, 60, 3, 0) == []
    report = json.loads(out.read_text())
    assert report["targeted"]["cifar10/resnet20"]["pairs"] == 6
    assert report["speed"]["cifar10/resnet20, 6 images"]["queries"] == 60


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--n", "0"], "--n must be at least 1, got 0"),
        (["--queries", "-5"], "--queries must be at least 1"),
        (["--threads", "-1"], "--threads must be at least 1"),
        (["--batch-sizes", "auto,x"], "--batch-sizes takes auto and/or positive whole numbers"),
        (["--batch-sizes", "0"], "--batch-sizes takes auto and/or positive whole numbers"),
        (["--pad", "on"], "--pad takes auto and/or off, not 'on'"),
        (["--attack", "cgbb"], "unknown attack 'cgbb' for --attack; use one of cgba, cgba-h,"),
        (["--attack", "fgsm"], "--attack fgsm is not a decision-based attack; use one of cgba"),
        (["--models", "cifar10/nope"], "unknown model 'cifar10/nope' for --models"),
        (["--models", "cifar10/resnet4b-at,,x"], "unknown model 'x' for --models"),
        (["--models", "mnist/lenet5"], "--models takes CIFAR-10 models: 'mnist/lenet5' is not"),
    ],
)
def test_bad_profile_command_lines_stop_before_anything_runs(args, needle, capsys):
    """decision_profile.py: --n 0 ended in torch.cat's traceback after loading the model,
    --batch-sizes x in int()'s after timing the raw loop, --threads -1 in torch's. An unknown
    --attack was found only after the model's raw throughput was timed, a white-box one ended in
    "has no parameter 'batch_size'", and an unknown model after the models before it had run;
    a bad --pad exited with status 1 and no usage."""
    profile = load_script("decision_profile")
    with pytest.raises(SystemExit) as stop:
        profile.main(["--models", "cifar10/resnet4b-at", *args])
    assert stop.value.code == 2
    err = capsys.readouterr()
    assert needle in err.err.strip().splitlines()[-1] and "allocator" not in err.out, err


@pytest.mark.parametrize("peer", ["run_art", "run_foolbox"])
def test_peer_seconds_leave_out_the_recorders_bookkeeping(peer, monkeypatch):
    """The recording wrapper's own work (logging every adversarial probe's distance, one row at
    a time in Python) was timed as the peer's: 8% of ART's and 15% of Foolbox's seconds on 4
    images of cifar10/resnet4b-at, while robustkit's time holds no such harness work.

    Timed on a clock of the test's own, which only the bookkeeping (20 ms a call) and the
    model's forward passes (5 ms each) advance: the peer's seconds are then exactly its forward
    passes'. (Comparing wall-clock runs with and without a real sleep flaked: the peer's own
    code ran about 8 ms a call slower after each sleep, which took half the margin.)"""
    import types

    import torch

    bench = load_benchmark()
    model, x, y = tiny_classifier(2)
    clock = [0.0]
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    recorded, calls, passes = bench.QueryRecorder.recorded, [], []

    def slow(self, rows):  # bookkeeping made slow: 20 ms a call
        calls.append(rows.shape[0])
        clock[0] += 0.02
        return recorded(self, rows)

    class Ticking(torch.nn.Module):
        def forward(self, rows):
            passes.append(rows.shape[0])
            clock[0] += 0.005
            return model(rows)

    monkeypatch.setattr(bench.QueryRecorder, "recorded", slow)
    _, seconds = getattr(bench, peer)(Ticking(), x, y, 40, 0)
    assert len(calls) >= 5 and len(passes) >= 5
    assert seconds == pytest.approx(0.005 * len(passes)), (seconds, len(calls), len(passes))


def test_one_image_at_a_time_is_seeded_from_the_benchmark_seed(monkeypatch):
    """Found by review: the one-image-at-a-time speed runs used CGBA's default seed whatever
    --seed said; they take it now, as the lockstep speed runs do."""
    import torch

    bench = load_benchmark()
    seeds = []
    real = bench.robustkit.get_attack

    def recording(name, **params):
        seeds.append(params.get("seed"))
        return real(name, **params)

    monkeypatch.setattr(bench.robustkit, "get_attack", recording)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x = torch.rand(2, 3, 2, 2)
    with torch.no_grad():
        y = model(x).argmax(1)
    out = bench.one_at_a_time(model, x, y, queries=20, seed=7)
    assert seeds == [7] and out["images"] == 2


def test_whitebox_records_the_command_it_was_given_and_its_note(tmp_path, monkeypatch):
    """whitebox.py recorded the process's sys.argv (pytest's, when main() was called with its
    own arguments) and left --note out of its JSON."""
    module = load_script("whitebox")
    monkeypatch.setattr(module, "run", lambda args: {"rows": []})
    monkeypatch.setattr(module, "markdown", lambda res: "table")
    out = tmp_path / "wb.json"
    module.main(["--n", "8", "--note", "a quiet CPU", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["command"] == (
        f".venv/bin/python benchmarks/whitebox.py --n 8 --note 'a quiet CPU' --out {out}"
    )
    assert saved["note"] == "a quiet CPU"


def test_profile_puts_the_oracles_padding_back(monkeypatch):
    """decision_profile.py --pad off left robustkit.oracle.PAD_ON_GPU off for the rest of the
    process (a notebook or a test calling main() then ran GPU passes unpadded)."""
    import robustkit
    import robustkit.oracle

    profile = load_script("decision_profile")
    model, x, y = tiny_classifier(4)
    monkeypatch.setattr(robustkit, "load_model", lambda name, device=None: model)
    monkeypatch.setattr(robustkit, "list_models", lambda: ["cifar10/tiny"])
    monkeypatch.setattr(profile, "first_correct", lambda model, n: (x, y, None))
    monkeypatch.setattr(profile, "forward_throughput", lambda *a, **k: (1000.0, 32))
    assert robustkit.oracle.PAD_ON_GPU
    profile.main(["--models", "cifar10/tiny", "--pad", "off", "--repeats", "1", "--queries", "20"])
    assert robustkit.oracle.PAD_ON_GPU


def test_result_files_are_strict_json_and_keep_infinite_distances(tmp_path, capsys):
    """An attack that found no adversarial example within a budget for half the images has an
    infinite median there; the result file wrote it as the token ``Infinity`` (as the published
    decision.json did, three times), which strict JSON readers (JavaScript, jq) refuse. It is
    written ``"inf"``, as robustkit's own JSON outputs write it, and read back as infinity."""
    bench = load_benchmark()
    out = tmp_path / "decision.json"
    found_late = row(0.3)
    found_late["median_l2"]["100"] = float("inf")
    found_late["curve"]["median_l2"][0] = float("inf")
    merged = tmp_path / "part.json"
    merged.write_text(json.dumps(part("cgba run", {"cgba": found_late})))
    common = ["--n", "2", "--budgets", "100", "--attacks", "none", "--targeted-pairs", "0"]
    common += ["--speed-repeats", "0", "--serial-images", "0", "--out", str(out), "--plot="]
    bench.main([*common, "--merge", str(merged)])

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    report = json.loads(out.read_text(), parse_constant=refuse)
    cgba = report["models"]["m"]["attacks"]["cgba"]
    assert cgba["median_l2"]["100"] == "inf" and cgba["curve"]["median_l2"] == ["inf", 0.3]
    assert bench.read_result(out, "--out")["models"]["m"]["attacks"]["cgba"]["median_l2"] == {
        "100": float("inf")
    }
    capsys.readouterr()
    bench.main(common)  # rendered again from the file
    assert "| ∞ |" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--out", "--plot"])
def test_an_output_that_cannot_be_written_stops_before_anything_runs(
    flag, tmp_path, monkeypatch, capsys
):
    """An --out or --plot under a path that is a file (or in a directory that is not writable)
    ended in a traceback: --out's after the model's raw throughput was timed, --plot's after
    every row had been computed (and before --readme updated the README)."""
    bench = load_benchmark()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    paths = {"--out": str(tmp_path / "o.json"), "--plot": str(tmp_path / "p.png")}
    paths[flag] = str(blocker / "x")

    def ran(*a, **k):
        raise AssertionError("the run started")

    monkeypatch.setattr(bench.robustkit, "load_model", ran)
    with pytest.raises(SystemExit) as stop:
        bench.main(["--n", "2", "--budgets", "100", "--models", "cifar10/resnet20",
                    "--attacks", "cgba", "--targeted-pairs", "0", "--speed-repeats", "0",
                    "--out", paths["--out"], "--plot", paths["--plot"]])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"cannot write {flag} {blocker / 'x'}: {blocker} is a file" in err, err
    assert not (tmp_path / "o.json").exists()


def test_whitebox_checks_its_result_file_before_the_run(tmp_path, monkeypatch, capsys):
    """whitebox.py wrote --out only after the whole run (minutes): a path it could not write
    ended in a traceback and every measurement was lost."""
    module = load_script("whitebox")
    runs = []
    monkeypatch.setattr(module, "run", lambda args: runs.append(args) or {"rows": []})
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as stop:
        module.main(["--n", "8", "--out", str(blocker / "wb.json")])
    assert stop.value.code == 2 and runs == []
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"cannot write --out {blocker / 'wb.json'}: {blocker} is a file" in err, err


@pytest.mark.parametrize(
    "attack, module, package",
    [("art-hsja", "art", "adversarial-robustness-toolbox"), ("foolbox-hsja", "foolbox", "foolbox")],
)
def test_a_peer_that_is_not_installed_is_named_before_anything_runs(
    attack, module, package, tmp_path, monkeypatch, capsys
):
    """Without ART (or Foolbox) installed, decision.py ran robustkit's attacks first and then
    ended in an ImportError traceback at the peer's row."""
    bench = load_benchmark()
    monkeypatch.setitem(sys.modules, module, None)  # `import art` fails as if not installed

    def ran(*a, **k):
        raise AssertionError("the run started")

    monkeypatch.setattr(bench.robustkit, "load_model", ran)
    with pytest.raises(SystemExit) as stop:
        bench.main(["--n", "2", "--budgets", "100", "--models", "cifar10/resnet20",
                    "--attacks", f"cgba,{attack}", "--targeted-pairs", "0",
                    "--speed-repeats", "0", "--out", str(tmp_path / "o.json"), "--plot="])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{attack} needs {module}, which is not installed" in err, err
    assert f"pip install {package}" in err and f"leave {attack} out of --attacks" in err, err


@pytest.mark.parametrize("module", ["torchattacks", "foolbox", "art"])
def test_whitebox_names_a_peer_that_is_not_installed_before_the_run(
    module, tmp_path, monkeypatch, capsys
):
    """whitebox.py loaded the model and the data, then ended in an ImportError traceback when
    torchattacks, Foolbox or ART was not installed."""
    wb = load_script("whitebox")
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(wb.robustkit, "load_model", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(SystemExit) as stop:
        wb.main(["--n", "8", "--out", str(tmp_path / "wb.json")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"needs {module}, which is not installed" in err and "pip install" in err, err


def test_an_infinite_raw_timing_is_refused(tmp_path, monkeypatch, capsys):
    """--raw-seconds inf passed the check (it is positive) and the raw forward loop, timed until
    that many seconds had passed, never ended."""
    bench = load_benchmark()
    monkeypatch.setattr(bench.robustkit, "load_model", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(SystemExit) as stop:
        bench.main(["--models", "cifar10/resnet20", "--attacks", "cgba", "--raw-seconds", "inf",
                    "--out", str(tmp_path / "o.json"), "--plot="])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--raw-seconds must be a positive number of seconds, got inf" in err, err


@pytest.mark.parametrize("script", ["decision", "decision_profile", "whitebox"])
def test_every_option_says_what_it_does_and_its_default(script, monkeypatch, capsys):
    """--help listed most options bare (decision.py's --n, --budgets, --models, --attacks, --seed;
    every option of decision_profile.py but three; whitebox.py's --n, --threads, --repeats):
    neither what they do nor their defaults."""
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option
    with pytest.raises(SystemExit) as stop:
        load_script(script).main(["--help"])
    assert stop.value.code == 0
    options = []  # (flag as listed, its help): a long flag's help goes on the next line
    for line in capsys.readouterr().out.split("options:\n", 1)[1].splitlines():
        if line.startswith("  -"):
            options.append(line.strip().partition("  ")[::2])
        elif line.strip():
            options[-1] = (options[-1][0], f"{options[-1][1]} {line.strip()}")
    assert len(options) > 5
    for flag, text in options:
        if flag.startswith("-h, --help"):
            continue
        assert text.strip(), f"{script}.py {flag} says nothing"
        if " " in flag:  # it takes a value: its default
            assert "default" in text, f"{script}.py {flag} names no default: {text}"


def test_whitebox_refuses_an_auto_section_larger_than_the_test_set(tmp_path, monkeypatch, capsys):
    """--auto-n 20000 ran every timed method first (minutes), then ended in load_dataset's
    error ("n=20000 ... asks for 20000") with nothing written."""
    module = load_script("whitebox")
    runs = []
    monkeypatch.setattr(module, "run", lambda args: runs.append(args) or {"rows": []})
    with pytest.raises(SystemExit) as stop:
        module.main(["--auto-n", "20000", "--out", str(tmp_path / "wb.json")])
    assert stop.value.code == 2 and runs == []
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--auto-n must be at most 10000 (the CIFAR-10 test set), got 20000" in err, err


def test_whitebox_loads_the_auto_sections_model_before_the_timed_runs(monkeypatch):
    """The auto section's model (cifar10/resnet4b-at) was loaded after every method had been
    timed: without its checkpoint the run ended in an error then, with nothing written."""
    import robustkit

    module = load_script("whitebox")
    model, x, y = tiny_classifier(2)

    def load_model(name, device=None):
        if name == "cifar10/resnet4b-at":
            raise robustkit.RobustkitError("no checkpoint for cifar10/resnet4b-at")
        return model

    def timed(*a, **k):
        raise AssertionError("timed before the auto section's model was loaded")

    monkeypatch.setattr(module.robustkit, "load_model", load_model)
    monkeypatch.setattr(module, "first_correct", lambda model, n, device: (x, y))
    for peers in ("torchattacks_methods", "foolbox_methods"):
        monkeypatch.setattr(module, peers, lambda model: {})
    monkeypatch.setattr(module, "art_methods", lambda model, n: {})
    monkeypatch.setattr(module, "time_methods", timed)
    threads = module.torch.get_num_threads()  # (run sets it for the process)
    args = module.argparse.Namespace(n=2, threads=threads, repeats=1, auto_n=4)
    with pytest.raises(robustkit.RobustkitError, match="no checkpoint"):
        module.run(args)


def test_the_gpu_script_without_its_output_directory_says_how_to_run_it():
    """benchmarks/decision_gpu.sh without OUTDIR ended in bash's "$1: unbound variable"."""
    import subprocess

    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "decision_gpu.sh")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "usage: benchmarks/decision_gpu.sh OUTDIR" in lines[0], done.stderr


def test_ctrl_c_says_what_was_saved(tmp_path, monkeypatch):
    """Ctrl-C during a pair ended decision.py in a traceback from deep inside the attack, which
    did not say that the pairs finished before were saved or how to go on."""
    bench = load_benchmark()
    model, x, y = tiny_classifier(2)
    done = []

    def pair(model, x, y, name, *a, **k):
        if done:
            raise KeyboardInterrupt
        done.append(name)
        return {"median_l2": {"100": 0.5}, "seconds_per_image": 1.0}

    monkeypatch.setattr(bench.robustkit, "load_model", lambda name, device: model)
    monkeypatch.setattr(bench, "first_correct", lambda model, n: (x, y, [0, 1]))
    monkeypatch.setattr(bench, "forward_throughput", lambda *a, **k: (1000.0, 16))
    monkeypatch.setattr(bench, "run_pair", pair)
    out = tmp_path / "decision.json"
    with pytest.raises(KeyboardInterrupt, match=f"the rows finished before are saved in {out}"):
        bench.main(["--n", "2", "--budgets", "100", "--models", "cifar10/resnet20",
                    "--attacks", "cgba,hsja", "--targeted-pairs", "0", "--speed-repeats", "0",
                    "--out", str(out), "--plot="])  # fmt: skip
    saved = json.loads(out.read_text())["models"]["cifar10/resnet20"]["attacks"]
    assert list(saved) == ["cgba"]


@pytest.mark.parametrize("script", ["decision", "decision_profile", "whitebox"])
def test_ctrl_c_ends_a_benchmark_in_one_line(script, monkeypatch, capsys):
    """Ctrl-C ended every benchmark script in a traceback."""
    import argparse
    import runpy

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", interrupted)
    monkeypatch.setattr(sys, "argv", [f"{script}.py"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scripts add benchmarks/ to it
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(ROOT / "benchmarks" / f"{script}.py"), run_name="__main__")
    assert stop.value.code == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stopped (Ctrl-C)"), lines


def test_a_row_reports_the_attacks_own_medians_and_speed(tmp_path, monkeypatch, capsys):
    """The numbers of a row, end to end through main() with a real attack on a tiny model: the
    medians at the budgets are those of the attack's own trajectories (run again here with the
    same seed), s/image its seconds over the images, queries/s its counted queries over its
    seconds, and the bracket their ratio to the mean of the raw throughputs around it."""
    import robustkit
    from robustkit.budgets import median_l2_at

    bench = load_benchmark()
    model, x, y = tiny_classifier(4)
    raw = iter([(100.0, 4), (800.0, 16), (1200.0, 32)])  # the model's, then around the attack
    monkeypatch.setattr(bench.robustkit, "load_model", lambda name, device: model)
    monkeypatch.setattr(bench, "first_correct", lambda model, n: (x, y, list(range(4))))
    monkeypatch.setattr(bench, "forward_throughput", lambda *a, **k: next(raw, (500.0, 8)))
    out = tmp_path / "decision.json"
    bench.main(["--n", "4", "--budgets", "20,60", "--models", "cifar10/resnet20",
                "--attacks", "cgba", "--targeted-pairs", "0", "--speed-repeats", "0",
                "--out", str(out), "--plot="])  # fmt: skip
    r = json.loads(out.read_text())["models"]["cifar10/resnet20"]["attacks"]["cgba"]
    again = robustkit.get_attack("cgba", max_queries=60, seed=0)(model, x, y)
    expected = median_l2_at(again, [20, 60]).tolist()
    assert [r["median_l2"]["20"], r["median_l2"]["60"]] == pytest.approx(expected, rel=1e-6)
    assert r["queries"] == int(again.queries.sum()) and r["max_queries_used"] <= 60
    assert r["seconds_per_image"] == pytest.approx(r["seconds"] / 4)
    assert r["queries_per_s"] == pytest.approx(r["queries"] / r["seconds"])
    assert r["forward_images_per_s"] == 1000.0
    row = next(line for line in capsys.readouterr().out.splitlines() if "robustkit CGBA" in line)
    assert f"| {r['queries_per_s']:.0f} ({r['queries_per_s'] / 1000:.0%}) |" in row, row
    assert row.startswith(f"| robustkit CGBA | {expected[0]:.3f} | {expected[1]:.3f} |"), row


@pytest.mark.parametrize(
    "other, named",
    [
        (["--n", "3"], "--n 2"),
        (["--budgets", "100,200"], "--budgets 100"),
        (["--n", "3", "--seed", "1"], "--n 2, --seed 0"),
    ],
)
def test_a_result_file_of_other_settings_is_not_wiped(other, named, tmp_path, capsys):
    """A run whose --n, --budgets or --seed differed from its --out's dropped every row of the
    file and saved over it: a 2-image trial (or a render with --attacks none) into the default
    benchmarks/results/local/decision.json wiped an earlier 100-image run. Now it is refused;
    --fresh starts the file over."""
    bench = load_benchmark()
    out = tmp_path / "decision.json"
    out.write_text(json.dumps({**part("earlier", {"hsja": row(0.4)}), "seed": 0}))
    before = out.read_text()
    args = ["--budgets", "100", "--attacks", "none", "--targeted-pairs", "0"]
    args += ["--speed-repeats", "0", "--out", str(out), "--plot="]
    with pytest.raises(SystemExit) as stop:
        bench.main(["--n", "2", *args, *other])
    assert stop.value.code == 2 and out.read_text() == before
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--out {out} holds results of {named}, not of this command's" in err, err
    assert "--fresh to start it over" in err
    bench.main(["--n", "2", *args, *other, "--fresh"])
    assert json.loads(out.read_text())["models"] == {}


@pytest.mark.parametrize(
    "plot, hidden, needle",
    [
        ("p.txt", None, "cannot write --plot {plot}: matplotlib writes no .txt files; use one of"),
        ("p.png", "matplotlib", "--plot needs matplotlib, which is not installed: pip install"),
    ],
)
def test_a_plot_that_cannot_be_made_stops_before_anything_runs(
    plot, hidden, needle, tmp_path, monkeypatch, capsys
):
    """--plot x.txt (a format matplotlib does not write) and --plot without matplotlib
    installed ended in a traceback after every row had been computed, before --readme could
    update the README."""
    bench = load_benchmark()
    if hidden:
        monkeypatch.setitem(sys.modules, hidden, None)
    monkeypatch.setattr(bench.robustkit, "load_model", lambda *a, **k: pytest.fail("ran"))
    plot = tmp_path / plot
    with pytest.raises(SystemExit) as stop:
        bench.main(["--n", "2", "--budgets", "100", "--models", "cifar10/resnet20",
                    "--attacks", "cgba", "--targeted-pairs", "0", "--speed-repeats", "0",
                    "--out", str(tmp_path / "o.json"), "--plot", str(plot)])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert needle.format(plot=plot) in err and "--plot= for none" in err, err


@pytest.mark.parametrize(
    "n, pairs, fix",
    [("3", "20", "use a larger --n (the pairs are among its images)"),
     ("6", "3", "use a larger --targeted-pairs")],
)  # fmt: skip
def test_targeted_pairs_of_one_class_name_the_setting_that_limits_them(
    n, pairs, fix, tmp_path, monkeypatch
):
    """With --n 3 --targeted-pairs 20 the pairs are the 3 images: when they were all of one
    class the error said "use a larger --targeted-pairs", which changes nothing."""
    bench = load_benchmark()
    model, x, _ = tiny_classifier(6)
    y = bench.torch.tensor([0, 0, 0, 1, 1, 1])  # the first three of one class
    monkeypatch.setattr(bench.robustkit, "load_model", lambda name, device: model)
    monkeypatch.setattr(bench, "first_correct", lambda model, n: (x[:n], y[:n], list(range(n))))
    monkeypatch.setattr(bench, "forward_throughput", lambda *a, **k: (1000.0, 16))
    with pytest.raises(SystemExit, match="all of one class") as stop:
        bench.main(["--n", n, "--budgets", "100", "--models", "cifar10/resnet20", "--attacks",
                    "none", "--targeted-pairs", pairs, "--speed-repeats", "0",
                    "--out", str(tmp_path / "o.json"), "--plot="])  # fmt: skip
    assert str(stop.value.code).endswith(fix), stop.value.code


def test_the_gpu_script_keeps_its_log(tmp_path):
    """decision_gpu.sh wrote its JSON results but the profile's measurements (printed only) and
    the commands went to the terminal alone, although the README says the GPU logs are kept
    beside the results. Run with PYTHON=echo: each command prints itself."""
    import os
    import subprocess

    out = tmp_path / "gpu"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "decision_gpu.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "PYTHON": "echo"},
    )
    assert done.returncode == 0, done.stderr
    log = (out / "log.txt").read_text()
    assert "benchmarks/decision_profile.py --models cifar10/resnet20" in log
    assert log.count("+ echo benchmarks/decision.py") == 4, log  # the commands, traced


def test_the_images_are_chosen_in_the_precision_the_attacks_label_them(monkeypatch):
    """first_correct classified the images in PyTorch's default precision, TF32 convolutions on
    a GPU, while the attacks label them in full float32: an image correct only under TF32 was
    then skipped by robustkit's attacks (not attacked), and its medians were taken over fewer
    images than the --n the table names. On a CPU the two are the same."""
    import contextlib

    import torch

    bench = load_benchmark()
    model, x, y = tiny_classifier(4)
    inside, seen = [False], []

    @contextlib.contextmanager
    def recording():
        inside[0] = True
        try:
            yield
        finally:
            inside[0] = False

    class Watched(torch.nn.Module):
        def forward(self, rows):
            seen.append(inside[0])
            return model(rows)

    monkeypatch.setattr(bench, "full_float32", recording)
    monkeypatch.setattr(bench, "dataset_size", lambda name, split: 4)
    monkeypatch.setattr(bench.robustkit, "load_dataset", lambda *a, n, offset: (x, y))
    xs, ys, idx = bench.first_correct(Watched(), 4)
    assert idx == [0, 1, 2, 3] and seen == [True]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--n", "0"], "--n must be at least 1, got 0"),
        (["--threads", "-2"], "--threads must be at least 1, got -2"),
        (["--repeats", "0"], "--repeats must be at least 1, got 0"),
        (["--auto-n", "-1"], "--auto-n must be at least 0, got -1"),
    ],
)
def test_whitebox_names_the_bad_count(args, needle, tmp_path, monkeypatch, capsys):
    """whitebox.py answered every bad count with "--n, --threads and --repeats must be ≥ 1 and
    --auto-n ≥ 0", naming neither the option that was wrong nor its value."""
    module = load_script("whitebox")
    monkeypatch.setattr(module, "run", lambda args: pytest.fail("ran"))
    with pytest.raises(SystemExit) as stop:
        module.main([*args, "--out", str(tmp_path / "wb.json")])
    assert stop.value.code == 2
    assert needle in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_speed_only_report_has_no_empty_tables(capsys):
    """A speed-only run (--attacks none --speed-repeats 3, as the published speed lines were
    made) printed, for each model, the header of a table of medians with no rows under it."""
    bench = load_benchmark()
    model = {"attacks": {}, "forward_images_per_s": 1000.0, "forward_batch": 16, "images": [0, 1]}
    report = {"n": 2, "budgets": [100], "seed": 0, "threads": 1, "machine": "x", "date": "d"}
    report |= {"command": "c", "models": {"m": model}, "speed": {"m, 2 images": speed("CPU", 2)}}
    text = bench.markdown(report)
    assert "| attack |" not in text and "**m**" not in text, text
    assert "CGBA speed on m, 2 images" in text
