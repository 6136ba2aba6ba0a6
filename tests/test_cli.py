from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.helpers import fail_conv_trials, record_run, tiny_dict, write_study

ROOT = Path(__file__).resolve().parents[1]

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_validate_and_plan(tiny_study_file):
    result = _invoke("validate", str(tiny_study_file))
    assert result.exit_code == 0
    assert "3 configuration(s) x 2 seed(s) = 6 trials" in result.output
    result = _invoke("plan", str(tiny_study_file))
    assert result.exit_code == 0
    assert "teachers=conv+inv" in result.output and "rednet" in result.output
    # The split sizes: 8 training images per class, validation and test carved from digits.
    assert re.search(r"digits .*│\s+80 │\s+287 │\s+359 │", result.output), result.output
    # Overrides, validated like the file; new configurations make a study of their own.
    result = _invoke(
        "validate", str(tiny_study_file), "--set", "train.epochs=1", "--set", "seeds=[0]"
    )
    assert result.exit_code == 0 and re.search(r"ok: tiny-[0-9a-f]{8} .* x 1 seed", result.output)
    result = _invoke("plan", str(tiny_study_file), "--set", "train.epochz=1")
    assert result.exit_code == 2 and "train.epochz: unknown key" in result.output


def test_plan_with_a_database_shows_the_seeds_other_studies_ran(tiny_study_file, storage_url):
    from harness.runner import run_identity
    from harness.store import Store
    from harness.study import load_study

    point = load_study(tiny_study_file).configs[1]
    store = Store(storage_url)
    record_run(store, run_identity(point.with_seed(1), study="other", trial_number=0))
    output = _invoke("plan", str(tiny_study_file), "--storage", storage_url).output
    assert "seeds copied, not trained" in output
    rows = [line for line in output.splitlines() if point.config_hash[:12] in line]
    assert len(rows) == 1 and rows[0].rstrip(" │").endswith("1"), rows
    others = [line for line in output.splitlines() if re.match(r"│ [02] ", line)]
    assert len(others) == 2 and all(line.rstrip(" │").endswith("-") for line in others), others
    # A study that trains every run itself copies nothing.
    own = _invoke(
        "plan", str(tiny_study_file), "--storage", storage_url, "--set", "reuse_runs=false"
    )
    [row] = [line for line in own.output.splitlines() if point.config_hash[:12] in line]
    assert row.rstrip(" │").endswith("-"), row


@pytest.mark.parametrize(
    "change",
    [
        {"unknown_key": 1},
        {"train": {"epochs": "x"}},
        {"distill": {"teachers": ["ghost"]}},
        {"grid": {"student.no_such": [1]}},
    ],
)
def test_bad_study_exits_2_with_one_line_and_writes_nothing(tmp_path, change):
    path = write_study(tmp_path, tiny_dict(**change))
    db = tmp_path / "db.sqlite"
    result = runner.invoke(
        app,
        ["run", str(path), "--storage", f"sqlite:///{db}", "--cache-dir", str(tmp_path / "cache")],
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert not db.exists() and not (tmp_path / "cache").exists()


def test_bad_storage_url_is_a_one_line_error(tiny_study_file):
    result = runner.invoke(app, ["run", str(tiny_study_file), "--storage", "mysql://x@y/z"])
    assert result.exit_code == 2 and "backend 'mysql' is not supported" in result.output


@pytest.mark.e2e
def test_run_then_rerun_does_nothing(tmp_path):
    path = write_study(tmp_path, tiny_dict(seeds=[0, 1], grid={"distill.teachers": [[], ["conv"]]}))
    common = [
        "--storage",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    result = _invoke("run", str(path), *common, "--no-dashboard")
    assert result.exit_code == 0, result.output
    assert "4 trial(s) run now; 4 complete, 0 failed" in result.output
    assert "(4 newly queued, 0 re-queued)" in result.output
    assert "baseline" in result.output
    again = _invoke("run", str(path), *common, "--no-dashboard")
    assert "0 trial(s) run now; 4 complete" in again.output
    assert "(0 newly queued, 0 re-queued)" in again.output


def test_status_report_and_their_formats(finished_study):
    common = ["--storage", finished_study["storage"]]
    status = _invoke("status", *common)
    assert re.search(r"tiny\s.*grid\s.*\b0\b.*\b4\b", status.output)

    csv = _invoke("report", "tiny", *common, "--format", "csv")
    header, *rows = csv.output.strip().splitlines()
    assert "mean" in header and "delta_mean" in header and len(rows) == 2

    md = finished_study["path"].parent / "r.md"
    _invoke(
        "report", str(finished_study["path"]), *common, "--format", "markdown", "--out", str(md)
    )
    assert md.read_text().startswith("| label | n | test_mean | test_ci_low")

    bad = runner.invoke(app, ["report", "tiny", *common, "--format", "xls"])
    assert bad.exit_code == 2 and "--format" in bad.output  # typed: refused by typer
    for command in ("report", "export", "dashboard"):
        missing = runner.invoke(app, [command, "nope", *common])
        assert missing.exit_code == 2 and "no runs" in missing.output
        assert "(studies there: tiny)" in " ".join(missing.output.split())


def test_publish_export_dashboard(finished_study, tmp_path):
    common = ["--storage", finished_study["storage"]]
    path = finished_study["path"]
    record = tmp_path / "published"
    published = _invoke("publish", str(path), *common, "--out", str(record))
    assert published.exit_code == 0, published.output
    text = (record / "report.md").read_text()
    assert text.startswith("# tiny\n") and "| teachers=conv | 2 |" in text
    assert "\ntiny test study\n" in text  # no top comment: the file's description
    commented = tmp_path / "commented.yaml"
    commented.write_text("# #7: why this study\n#   exists\n" + path.read_text())
    _invoke("publish", str(commented), *common, "--out", str(tmp_path / "commented"))
    first = (tmp_path / "commented" / "report.md").read_text().split("\n\n")[1]
    assert first == "#7: why this study exists"
    assert re.search(r"\| conv \| resnet \| 0\.\d{4} \| 0\.\d{4} \|", text)  # val and test
    # The contrast first, its forest plot beside the report, every run in runs.csv.
    assert text.index("## Contrasts (test top-1") < text.index("## Student top-1 per config")
    assert "![forest plot of the contrasts](forest.svg)" in text
    assert "| teachers=conv vs teachers=none | test/top1 | 2 |" in text
    svg = (record / "forest.svg").read_text()
    assert svg.count('class="whisker"') == 1 and 'class="zero"' in svg
    runs_csv = (record / "runs.csv").read_text().splitlines()
    assert len(runs_csv) == 1 + 4 and "seed" in runs_csv[0] and "test/top1" in runs_csv[0]
    assert "## Diagnostics" in text and "attn_dist_first" in text
    environment = json.loads((record / "environment.json").read_text())
    assert environment["runs"] == 4 and environment["command"] == f"libkd run {path}"

    exported = _invoke("export", "tiny", *common, "--out", str(tmp_path / "x"))
    assert exported.exit_code == 0 and (tmp_path / "x" / "tiny-runs.parquet").exists()

    out_html = tmp_path / "dash.html"
    dash = _invoke("dashboard", "tiny", *common, "--out", str(out_html))
    assert dash.exit_code == 0 and out_html.stat().st_size > 1_000_000  # plotly.js inlined


@pytest.mark.parametrize("command", ["status", "report", "export", "dashboard", "publish"])
def test_reading_commands_never_create_a_database(tmp_path, command, finished_study):
    missing = tmp_path / "no" / "such.db"
    target = str(finished_study["path"]) if command == "publish" else "tiny"
    result = runner.invoke(app, [command, target, "--storage", f"sqlite:///{missing}"])
    assert result.exit_code == 2 and "no database at" in result.output
    assert not missing.parent.exists()


def test_unknown_study_is_named_with_the_known_ones(finished_study):
    result = runner.invoke(app, ["status", "nope", "--storage", finished_study["storage"]])
    assert result.exit_code == 2 and "studies there: tiny" in result.output


_GRID_OVER_FLOAT = {
    "grid": {},
    "search": {
        "sampler": "grid",
        "space": {"distill.temperature": {"type": "float", "low": 1.0, "high": 4.0}},
    },
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _GRID_OVER_FLOAT,
            "search.space.distill.temperature: the grid sampler cannot draw a float",
        ),
        ({"student": {"patch_size": 3}}, "student.patch_size: 3 does not divide the image size 8"),
        (
            {"teachers": {"conv": {"arch": "resnet", "checkpoint": "/no/such.safetensors"}}},
            "teachers.conv.checkpoint: /no/such.safetensors is not a file",
        ),
        (
            {"teachers": {"a.b": {"arch": "resnet"}}, "distill": {"teachers": ["a.b"]}},
            "teachers: 'a.b' is not a teacher name",
        ),
        ({"distill": {"teachers": ["conv"], "temperature": float("inf")}}, "distill.temperature"),
        ({"distill": {"teachers": ["conv"], "weights": {"conv": float("nan")}}}, "weights.conv"),
        ({"dataset": {"name": "imagefolder", "path": "/no/such"}}, "dataset.path: /no/such/train"),
    ],
)
def test_validate_rejects_what_a_run_would_reject(tmp_path, change, message):
    path = write_study(tmp_path, tiny_dict(**change))
    result = runner.invoke(app, ["validate", str(path)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert message in lines[0]


@pytest.mark.e2e
def test_run_exits_1_naming_the_trials_that_failed(tmp_path, monkeypatch):
    from harness.runner import _trial

    real = fail_conv_trials(monkeypatch)
    path = write_study(tmp_path, tiny_dict(seeds=[0], grid={"distill.teachers": [[], ["conv"]]}))
    common = [
        "--storage",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    overrides = ["--set", "train.lr=0.002"]  # a study of its own: tiny-<digest>
    result = runner.invoke(app, ["run", str(path), *common, *overrides, "--no-dashboard"])
    assert result.exit_code == 1
    assert "1 trial(s) failed in this call" in result.output
    assert "teachers=conv, seed 0: RuntimeError: boom" in result.output
    # The hint repeats the database and the overrides: following it retries this study.
    [hint] = re.findall(r"fix the cause, then run `(.*)`", result.output)
    assert shlex.split(hint) == [
        "libkd",
        "run",
        str(path),
        *common[:2],
        *overrides,
        "--retry-failed",
    ]
    assert "teachers=none" in result.output  # the results table is still printed
    # Fixed and retried by the hint's command: the call that completes it exits 0.
    monkeypatch.setattr(_trial, "train_student", real)
    retried = runner.invoke(app, [*shlex.split(hint)[1:], *common[2:], "--no-dashboard"])
    assert retried.exit_code == 0, retried.output
    assert "0 failed, 1 retried in the study (0 newly queued, 1 re-queued" in retried.output
    # Published and dashboarded by its name, no file: the overrides travel with the study.
    [name] = set(re.findall(r"\btiny-[0-9a-f]{8}\b", retried.output))
    record = tmp_path / "record"
    published = runner.invoke(app, ["publish", name, *common[:2], "--out", str(record)])
    assert published.exit_code == 0, published.output
    assert "--set train.lr=0.002" in (record / "report.md").read_text()
    page = tmp_path / "page.html"
    shown = runner.invoke(app, ["dashboard", name, *common[:2], "--out", str(page)])
    assert shown.exit_code == 0, shown.output
    assert "# --set train.lr=0.002" in page.read_text()


def test_worker_refuses_a_study_that_is_not_queued(tmp_path, finished_study):
    path = write_study(tmp_path, tiny_dict(name="other"))
    result = runner.invoke(app, ["worker", str(path), "--storage", finished_study["storage"]])
    assert result.exit_code == 2
    assert "study 'other' is not queued in this database" in result.output
    assert "studies there: tiny" in result.output


def test_storage_faults_are_one_line_and_never_show_a_password():
    unreachable = "postgresql+psycopg://alice:s3cret@127.0.0.1:1/libkd"
    result = runner.invoke(app, ["status", "--storage", unreachable])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "s3cret" not in result.output and "alice:***@127.0.0.1" in result.output
    garbled = "alice:s3cret@dbhost/libkd"  # no scheme: not a URL
    result = runner.invoke(app, ["status", "--storage", garbled])
    assert result.exit_code == 2 and "s3cret" not in result.output, result.output
    assert "not a database URL" in result.output


def test_database_aggregates_equal_the_same_computed_in_memory(finished_study):
    """What report and dashboard read aggregated by SQL equals polars over every epoch row."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from harness.analysis import (
        best_of_epochs,
        best_values,
        epoch_summary,
        final_values,
        load_epochs,
        load_runs,
        summarize_epochs,
    )
    from harness.store import Store

    store = Store(finished_study["storage"], create=False)
    runs, epochs = load_runs(store, "tiny"), load_epochs(store, "tiny")
    assert epochs.height > 0
    assert_frame_equal(
        best_values(store, "tiny").sort("run_id"),
        best_of_epochs(epochs).sort("run_id"),
        check_dtypes=False,
    )
    assert_frame_equal(
        epoch_summary(store, "tiny"),
        summarize_epochs(epochs, runs, prefix="val/top1").select(
            epoch_summary(store, "tiny").columns
        ),
        check_row_order=False,
        check_dtypes=False,
    )
    last = epochs.filter(pl.col("epoch") == pl.col("epoch").max().over("run_id"))
    expected = last.filter(pl.col("name").str.starts_with("val/top1")).select(
        "run_id", "name", "value"
    )
    assert_frame_equal(
        final_values(store, "tiny"), expected, check_row_order=False, check_dtypes=False
    )


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu", "'gpu' is not one of"),  # typed choices: typer refuses it
        ("cuda", "no CUDA device is visible"),
        ("meta", "'meta' is not one of"),
    ],
)
def test_an_impossible_device_is_refused_before_anything_is_queued(tmp_path, device, message):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = write_study(tmp_path, tiny_dict())
    db = tmp_path / "db.sqlite"
    result = runner.invoke(
        app, ["run", str(path), "--storage", f"sqlite:///{db}", "--device", device]
    )
    assert result.exit_code == 2 and message in result.output, result.output
    assert not db.exists()


HELP_IMPORTS = """
import sys
from typer.main import get_command
from harness.cli import app
try:
    get_command(app).main(sys.argv[1:], prog_name="libkd", standalone_mode=False)
except SystemExit:
    pass
print(",".join(m for m in ("torch", "timm", "torchvision", "optuna") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "args",
    [[], ["run"], ["worker"], ["report"], ["dashboard"], ["status"], ["cache", "verify"]],
)
@pytest.mark.e2e
def test_help_loads_no_model_library_and_shows_an_example(args):
    import subprocess
    import sys

    command = [sys.executable, "-c", HELP_IMPORTS, *args, "--help"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].strip() == ""  # none of them was imported
    assert "Example: libkd" in out.stdout or not args


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and re.fullmatch(r"libkd \d+\.\d+\.\d+\n", result.output)


@pytest.mark.parametrize("name", ["cifar10", "fashion-mnist"])
def test_validate_and_run_refuse_data_this_machine_does_not_have(tmp_path, monkeypatch, name):
    from harness.data import _sources

    monkeypatch.setattr(_sources, "data_search_path", lambda dataset: [tmp_path / "empty"])
    path = write_study(tmp_path, tiny_dict(dataset={"name": name}, student={"patch_size": 4}))
    db = tmp_path / "db.sqlite"
    for command in (["validate", str(path)], ["run", str(path), "--storage", f"sqlite:///{db}"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert f"dataset '{name}' not found" in result.output
    assert not db.exists()  # refused before anything was queued


@pytest.mark.parametrize("option", [["--workers", "0"], ["--n-trials", "-1"], ["--heartbeat", "0"]])
def test_impossible_counts_are_refused_before_anything_is_written(tmp_path, option):
    path = write_study(tmp_path, tiny_dict())
    db = tmp_path / "db.sqlite"
    result = runner.invoke(app, ["run", str(path), "--storage", f"sqlite:///{db}", *option])
    assert result.exit_code == 2 and option[0] in result.output
    assert not db.exists()


def test_validate_checks_a_checkpoint_fits_its_architecture(tmp_path):
    """Weights of another width, or of another network, are refused before any trial."""
    from safetensors.torch import save_file

    from harness.config import TeacherConfig
    from harness.models import ImageSpec, build_teacher

    spec = ImageSpec(channels=1, size=8, num_classes=10)
    narrow = build_teacher(TeacherConfig(arch="resnet", width=8), spec).state_dict()
    save_file({k: v.contiguous() for k, v in narrow.items()}, tmp_path / "narrow.safetensors")
    save_file({"head.weight": narrow["fc.weight"].contiguous()}, tmp_path / "other.safetensors")

    def validate(checkpoint: str, width: int):
        teachers = {"conv": {"arch": "resnet", "width": width, "checkpoint": checkpoint}}
        data = tiny_dict(teachers=teachers, distill={"teachers": ["conv"]}, grid={})
        path = write_study(tmp_path, data)
        return runner.invoke(app, ["validate", str(path)])

    fits = validate(str(tmp_path / "narrow.safetensors"), 8)
    assert fits.exit_code == 0, fits.output
    wider = validate(str(tmp_path / "narrow.safetensors"), 16)
    assert wider.exit_code == 2 and "shapes differ:" in wider.output
    assert "for resnet width 16 depth 1; give weights of that architecture" in wider.output
    other = validate(str(tmp_path / "other.safetensors"), 8)
    assert other.exit_code == 2 and "lacks" in other.output


@pytest.mark.e2e
@pytest.mark.slow
def test_a_study_s_cache_dir_is_where_its_teachers_and_caches_go(tmp_path, monkeypatch):
    """`cache.dir` was accepted and never used; --cache-dir and $LIBKD_CACHE_DIR still win."""
    monkeypatch.delenv("LIBKD_CACHE_DIR", raising=False)
    folder = tmp_path / "study-cache"
    data = tiny_dict(seeds=[0], grid={"distill.teachers": [["conv"]]})
    data["cache"] = {**data["cache"], "dir": str(folder)}
    path = write_study(tmp_path, data)
    storage = f"sqlite:///{tmp_path / 'libkd.db'}"
    result = _invoke("run", str(path), "--storage", storage, "--no-dashboard")
    assert result.exit_code == 0, result.output
    assert list((folder / "teachers").glob("[0-9a-f]*")) and list((folder / "logits").iterdir())


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_a_missing_study_file_is_one_line_before_torch_loads(tmp_path, command):
    import subprocess
    import sys

    code = (
        "import runpy, sys\n"
        f"sys.argv = ['libkd', {command!r}, 'missing.yaml']\n"
        "try:\n"
        "    runpy.run_module('harness.cli', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code, 'torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stderr.strip() == "error: missing.yaml: no such study file"
    assert done.stdout.strip() == "exit 2 False"  # exit code 2, torch never imported


READ_COMMANDS = """
import sys
from typer.main import get_command
from harness.cli import app
db, out = sys.argv[1], sys.argv[2]
storage = ["--storage", f"sqlite:///{db}"]
for args in (
    ["validate", "studies/quickstart.yaml"],
    ["plan", "studies/quickstart.yaml"],
    ["status", *storage],
    ["report", "premise_pilot", *storage],
    ["publish", "studies/premise_pilot.yaml", *storage, "--out", f"{out}/published"],
    ["dashboard", "premise_pilot", *storage, "--out", f"{out}/dashboard.html"],
):
    try:
        get_command(app).main(args, prog_name="libkd", standalone_mode=False)
    except SystemExit as exit:
        assert not exit.code, (args, exit.code)
    loaded = [m for m in ("torch", "timm", "torchvision") if m in sys.modules]
    print(args[0], ",".join(loaded) or "-", file=sys.stderr)
"""


COMMANDS = ("validate", "plan", "status", "report", "publish", "dashboard")


@pytest.mark.e2e
def test_the_commands_that_read_never_import_torch(tmp_path):
    """validate, plan, status, report, publish and dashboard check study files and read
    databases: none imports torch, timm or torchvision (they took 9-14 s when they did)."""
    import shutil
    import subprocess
    import sys

    db = tmp_path / "libkd.db"
    shutil.copy(ROOT / "results" / "premise_pilot" / "libkd.db", db)
    done = subprocess.run(
        [sys.executable, "-c", READ_COMMANDS, str(db), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.split(" ")[0] in COMMANDS]
    assert lines == [f"{command} -" for command in COMMANDS], done.stderr[-2000:]


STATUS_IMPORTS = """
import sys
from typer.main import get_command
from harness.cli import app
command = get_command(app)
command.main(["status", "--storage", sys.argv[1]], prog_name="libkd", standalone_mode=False)
heavy = ("polars", "numpy", "optuna", "alembic", "harness.study", "harness.config",
         "sqlalchemy.dialects.postgresql")
print(",".join(m for m in heavy if m in sys.modules) or "-", file=sys.stderr)
"""


def test_status_counts_trials_without_the_analysis_or_optuna_libraries(tmp_path):
    """`libkd status` reads counts and costs by SQL: it imports neither polars, numpy,
    Optuna (nor its alembic) nor the study schema (2 s at 1,000 runs when it did; 0.8 s now),
    nor, on SQLite, PostgreSQL's dialect."""
    import shutil
    import subprocess
    import sys

    db = tmp_path / "libkd.db"
    shutil.copy(ROOT / "results" / "premise_pilot" / "libkd.db", db)
    done = subprocess.run(
        [sys.executable, "-c", STATUS_IMPORTS, f"sqlite:///{db}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "premise_pilot" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "-", done.stderr[-2000:]


def test_publish_by_name_of_a_study_whose_file_was_never_recorded(tmp_path):
    """Runs without a recorded study file (written by an older libkd or another tool) are
    published by name once the command that ran them is given."""
    from harness.store import RunIdentity, Store

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store(url)
    record_run(store, RunIdentity("old", 0, "h" * 64, 0, "teachers=none", {}))
    refused = runner.invoke(app, ["publish", "old", "--storage", url, "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "with --command" in refused.output
    out = tmp_path / "old"
    given = ["--command", "libkd run old.yaml"]
    done = runner.invoke(app, ["publish", "old", "--storage", url, "--out", str(out), *given])
    assert done.exit_code == 0, done.output
    assert "`libkd run old.yaml`: 1 complete runs" in (out / "report.md").read_text()
