#!/usr/bin/env python3
"""Browse latency on a 1,000,000-member catalog: each restore page request timed through the Flask test
client (routing, queries, template), median and worst of several requests. Target: <= 100 ms.

    .venv/bin/python bench/bench_browse.py [--database-url postgresql+psycopg://…] [--repeat 15]

SQLite by default (a fresh file in a temporary data directory); the catalog is the one
tests/integration/test_restore_browse.py builds (sources /srv/projects …, a 10,000-entry folder).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import result, row  # also puts the repository on sys.path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    from stagebackup import create_app
    from stagebackup.extensions import db
    from stagebackup.models import Archive, Job, Project
    from stagebackup.paths import path_token
    from tests.conftest import SignedInClient
    from tests.integration.test_restore_browse import bulk_insert

    work = Path(tempfile.mkdtemp(prefix="bench-browse-"))
    try:
        app = create_app({"DATA_DIR": str(work / "data"), "DATABASE_URL": args.database_url})
        with app.app_context():
            project = Project(name="bench", sources=["/srv/projects"], dest_path="/backups")
            db.session.add(project)
            db.session.flush()
            job = Job(project_id=project.id, project_name="bench", kind="backup", flow="backup-directory",
                      status="succeeded")
            db.session.add(job)
            db.session.flush()
            archive = Archive(job_id=job.id, format="tgz", path="/backups/a.tar.gz", sha256="0" * 64)
            db.session.add(archive)
            db.session.commit()
            job_id = job.id
            started = time.monotonic()
            count = bulk_insert(job_id, archive.id)
            dialect = db.engine.dialect.name
            print(f"{dialect}: {count} members inserted in {time.monotonic() - started:.0f} s")
        app.test_client_class = SignedInClient  # every page needs a signed-in user: an admin, as in the tests
        client = app.test_client()
        base = f"/restore/backups/{job_id}"
        flat = path_token("srv/projects/flat")
        pages = {
            "root folder (implied folders)": base,
            "source folder": f"{base}?p={path_token('srv/projects')}",
            "990-entry folder": f"{base}?p={path_token('srv/projects/客户042/sub7')}",
            "10,000-entry folder, page 26": f"{base}?p={flat}&after={path_token('f005000.txt')}",
            "previous page": f"{base}?p={flat}&before={path_token('f005000.txt')}",
            "search 'logo_v3' (prefix)": f"{base}?q=logo_v3",
            "search 'file0001*' (glob, literal start)": f"{base}?q=file0001%2A",
            "search '*.ai' (one bounded slice)": f"{base}?q=%2A.ai",
        }
        worst_overall = 0.0
        for label, url in pages.items():
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            worst_overall = max(worst_overall, statistics.median(times))
            print(f"{label:45s} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms")
        verdict = "OK" if worst_overall <= 100 else "OVER"
        print(f"slowest page median: {worst_overall:.1f} ms (target <= 100 ms): {verdict}")
        result("browse", [row(f"browse {count:,} members ({dialect}), slowest page median",
                              worst_overall, goal="<= 100", unit="ms")])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
