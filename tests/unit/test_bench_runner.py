"""bench/run_all.py: it reads each script's RESULT line, judges goals the way the row's ratio is taken, and
every bench script has small arguments (else ``make bench`` would fail)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str):
    """A bench module by file (bench/ is no package), under a name no other test module uses."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run_all():
    return load("run_all")


@pytest.fixture(scope="module")
def common():
    return load("common")


def test_every_bench_script_has_small_arguments(run_all):
    assert sorted(p.name for p in BENCH.glob("bench_*.py")) == sorted(run_all.SMALL)


def test_the_result_line_is_collected_and_the_rest_echoed(run_all, tmp_path, capsys):
    script = tmp_path / "bench_fake.py"
    script.write_text("print('human report')\nprint('RESULT {\"bench\": \"fake\", \"rows\": []}')\n")
    payload, status, _seconds = run_all.run(script, [], dict(os.environ))
    assert (payload, status) == ({"bench": "fake", "rows": []}, 0)
    out = capsys.readouterr().out
    assert "human report" in out and "RESULT" not in out


def test_goals_apply_to_the_ratio_the_way_it_is_taken(run_all, common):
    faster = common.row("tgz", 1.0, baseline="pigz", theirs=1.2, goal=">= 0.90")  # baseline/ours = 1.2
    slower = common.row("sync", 2.0, baseline="rsync", theirs=1.0, ratio="ours/baseline", goal="<= 1.0")
    latency = common.row("browse", 120.0, goal="<= 100", unit="ms")
    assert (faster["ratio"], slower["ratio"]) == (1.2, 2.0)
    assert [run_all.met(r) for r in (faster, slower, latency)] == ["yes", "NO", "NO"]
    assert run_all.met(common.row("info", 1.0, baseline="dd", theirs=2.0)) == ""
    lines = [run_all.cells("tgz", faster), run_all.cells("sync", slower)]
    rendered = run_all.table(lines).splitlines()
    assert rendered[0].startswith("bench ") and len(rendered) == 4
    assert "1.20" in rendered[2] and "baseline/ours" in rendered[2] and "ours/baseline" in rendered[3]


def project_imports(script: Path) -> list[tuple[str, str | None]]:
    """(module, name) for every import of the project's code in a bench script, wherever it sits: the
    scripts import inside functions, so loading one does not execute them."""
    found = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("stagebackup", "tests"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "stagebackup"]
    return found


@pytest.mark.parametrize("script", sorted(BENCH.glob("bench_*.py")), ids=lambda p: p.name)
def test_what_a_bench_script_imports_from_the_project_exists(script):
    # A name that moved (the tape tables went to tape_models.py) broke `make bench` without failing a test.
    missing = []
    for module, name in project_imports(script):
        try:
            imported = importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        if name and not hasattr(imported, name):
            missing.append(f"{module}.{name}")
    assert not missing


def test_an_import_inside_a_function_is_seen(tmp_path):
    script = tmp_path / "bench_fake.py"
    script.write_text("def build():\n    from stagebackup.models import Archive, Tape\n")
    assert project_imports(script) == [("stagebackup.models", "Archive"), ("stagebackup.models", "Tape")]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bench_browse.py", "bench_versions.py"])
def test_the_page_benches_run_at_their_small_sizes(run_all, name, tmp_path):
    # They drive the pages through the test client: a page that came to need a signed-in user answered the
    # browse bench with a redirect, and `make bench` failed while every test passed.
    env = {**os.environ, "STAGEBACKUP_BENCH_DIR": str(tmp_path)}
    payload, status, _seconds = run_all.run(BENCH / name, run_all.SMALL[name], env)
    assert status == 0 and payload and payload["rows"]
