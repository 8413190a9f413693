"""One writer of job state: only the jobs layer (``WRITERS``) may change ``jobs``, ``job_stages`` or
``job_logs``. A static check over the package's source, so a new writer anywhere else fails the suite."""

from __future__ import annotations

import ast
from pathlib import Path

from stagebackup.models import Job

PACKAGE = Path(__file__).resolve().parents[2] / "stagebackup"
WRITERS = {"jobs/queue.py", "jobs/workers.py", "jobs/state.py"}
JOB_TABLES = {"Job", "JobStage", "JobLog"}
JOB_COLUMNS = set(Job.__table__.columns.keys())
STATEMENTS = {"update", "delete", "insert", "sql_update", "insert_rows"}


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def job_state_writes(source: str) -> list[tuple[int, str]]:
    """(line, what) for every statement in ``source`` that writes a job, a stage or a log line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _called(node)
            if name in JOB_TABLES:
                found.append((node.lineno, f"{name}(…) row created"))
            elif name in STATEMENTS and node.args and _names_in(node.args[0]) & JOB_TABLES:
                found.append((node.lineno, f"{name}({ast.unparse(node.args[0])}…)"))
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (isinstance(target, ast.Attribute) and target.attr in JOB_COLUMNS
                        and isinstance(target.value, ast.Name) and "job" in target.value.id.lower()):
                    found.append((node.lineno, f"{ast.unparse(target)} = …"))
    return found


def test_only_the_jobs_layer_writes_job_state():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in WRITERS:
            continue
        offenders += [f"{relative}:{line}: {what}" for line, what in job_state_writes(path.read_text())]
    assert offenders == [], "job state written outside the jobs layer (WRITERS):\n" + "\n".join(offenders)


def test_the_check_sees_each_kind_of_write():
    source = """
from sqlalchemy import update
def f(job, job_id):
    db.session.execute(update(Job).where(Job.id == job_id).values(status="running"))
    db.session.add(JobLog(job_id=job_id, tag="INFO", message="x"))
    db.session.execute(update(JobStage).values(message=None))
    insert_rows(JobLog.__table__, (), [])
    job.status = "failed"
    job.progress += 1
    project.status = "fine"  # not a job
"""
    assert sorted(line for line, _ in job_state_writes(source)) == [4, 5, 6, 7, 8, 9]
    assert job_state_writes(WRITERS_SAMPLE := "x = select(Job).where(Job.id == 1)") == [], WRITERS_SAMPLE
