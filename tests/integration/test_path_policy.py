"""Guard rails that hold for everyone: StageBackup's own folders, symlinks, configured roots, the worker's check."""

from __future__ import annotations

import os
import tarfile

import pytest

from stagebackup import project_checks, projects
from stagebackup.config import load_config
from stagebackup.errors import ValidationError
from stagebackup.extensions import db
from stagebackup.models import Archive, Project
from stagebackup.restore import service
from tests.integration.test_sync import log_lines, run_sync


def spec(name, sources, dest, mode="archive"):
    return project_checks.ProjectSpec(name=name, sources=[str(s) for s in sources], dest_dir=str(dest), mode=mode)


def refused(project_spec) -> str:
    with pytest.raises(ValidationError) as info:
        projects.create(project_spec, actor="test")
    db.session.rollback()
    return str(info.value)


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    return folder


@pytest.mark.parametrize("key", ["DATA_DIR", "CACHE_DIR", "VTAPE_DIR"])
@pytest.mark.parametrize("mode", ["archive", "sync"])
def test_own_folders_are_never_a_destination(app, src, key, mode):
    message = refused(spec("p", [src], os.path.join(app.config[key], "x"), mode))
    assert "StageBackup's own" in message


def test_a_restore_root_is_never_a_destination(app, src, tmp_path):
    app.config["RESTORE_ROOTS"] = [str(tmp_path / "restores")]
    assert "restore root" in refused(spec("p", [src], tmp_path / "restores" / "here"))


@pytest.mark.parametrize("where", ["data", "data/vtape", "data/cache/sub"])
def test_a_source_inside_the_data_directory_is_refused(app, tmp_path, where):
    (tmp_path / where).mkdir(parents=True, exist_ok=True)
    assert "data directory" in refused(spec("p", [tmp_path / where], tmp_path / "dest"))


def test_a_mirror_that_holds_the_data_directory_is_refused(app, tmp_path, tmp_path_factory):
    # A source named "data" mirrored into the data directory's parent would replace the data directory.
    other = tmp_path_factory.mktemp("elsewhere") / "data"
    other.mkdir()
    (other / "x").write_text("x")
    assert "holds StageBackup's own data directory" in refused(spec("q", [other], tmp_path, mode="sync"))


def test_a_destination_reached_through_a_symlink_into_the_source_is_refused(app, src, tmp_path):
    os.symlink(src / "inner", tmp_path / "link")
    (src / "inner").mkdir()
    assert "inside source" in refused(spec("p", [src], tmp_path / "link" / "archives"))
    # The reverse for a mirror: its source reached through a link inside the destination.
    dest = tmp_path / "mirror"
    dest.mkdir()
    os.symlink(dest / "m", tmp_path / "src-link")
    (dest / "m").mkdir()
    assert "inside destination" in refused(spec("q", [tmp_path / "src-link"], dest, mode="sync"))


def test_sources_overlapping_through_a_symlink_are_refused(app, src, tmp_path):
    (src / "sub").mkdir()
    os.symlink(src / "sub", tmp_path / "sub-link")
    assert "overlap" in refused(spec("p", [src, tmp_path / "sub-link"], tmp_path / "dest"))


def test_configured_roots_confine_sources_and_destinations(app, src, tmp_path):
    app.config["SOURCE_ROOTS"] = [str(tmp_path / "allowed-src")]
    app.config["DEST_ROOTS"] = [str(tmp_path / "allowed-dest")]
    assert "STAGEBACKUP_SOURCE_ROOTS" in refused(spec("p", [src], tmp_path / "allowed-dest"))
    (tmp_path / "allowed-src").mkdir()
    assert "STAGEBACKUP_DEST_ROOTS" in refused(spec("p", [tmp_path / "allowed-src"], tmp_path / "dest"))
    projects.create(spec("p", [tmp_path / "allowed-src"], tmp_path / "allowed-dest" / "x"), actor="test")


def test_roots_are_read_from_the_environment_as_json_or_a_path_list(monkeypatch, tmp_path):
    monkeypatch.setenv("STAGEBACKUP_SOURCE_ROOTS", f"{tmp_path}/a{os.pathsep}{tmp_path}/b")
    monkeypatch.setenv("STAGEBACKUP_BROWSE_ROOTS", f'["{tmp_path}/c"]')
    config = load_config({"DATA_DIR": str(tmp_path / "data")})
    assert config["SOURCE_ROOTS"] == [f"{tmp_path}/a", f"{tmp_path}/b"]
    assert config["BROWSE_ROOTS"] == [f"{tmp_path}/c"] and config["DEST_ROOTS"] == []


def test_the_worker_checks_again_when_the_job_starts(app, src, tmp_path):
    """A destination replaced by a link into the source after the project was saved: the job fails, writes
    nothing."""
    dest = tmp_path / "dest"
    project_id = projects.create(spec("later", [src], dest, mode="sync"), actor="test").id
    os.symlink(src, dest)
    job = run_sync(app, project_id)
    assert job.status == "failed" and job.error_class == "PathRefused"
    assert "inside source" in job.error_message
    assert sorted(os.listdir(src)) == ["a.txt"]


def test_a_backup_job_refuses_a_source_that_became_the_data_directory(app, tmp_path):
    source = tmp_path / "moving"
    source.mkdir()
    project_id = projects.create(spec("moving", [source], tmp_path / "dest"), actor="test").id
    db.session.get(Project, project_id).sources = [app.config["DATA_DIR"]]  # as an old row could hold it
    db.session.commit()
    job = run_sync(app, project_id)
    assert job.status == "failed" and "data directory" in job.error_message
    assert not (tmp_path / "dest").exists() or not os.listdir(tmp_path / "dest")


def test_own_folders_inside_a_source_are_skipped_with_an_info_line(app, tmp_path, tmp_path_factory):
    """The data directory (database, keys), the cache, the virtual tapes and the restore roots inside a
    source are passed over; the archive holds none of them."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "work.txt").write_text("work")
    app.config["RESTORE_ROOTS"] = [str(root / "restores")]
    app.config["VTAPE_DIR"] = str(root / "tapes")
    for name in ("restores", "tapes"):
        (root / name).mkdir()
        (root / name / "x").write_text("x")
    os.symlink(app.config["DATA_DIR"], root / "data-link")  # a link is stored as a link, never followed
    project_id = projects.create(spec("tree", [tmp_path], tmp_path_factory.mktemp("out")), actor="test").id
    job = run_sync(app, project_id)
    assert job.status == "succeeded", job.error_message
    archive = db.session.query(Archive).filter_by(job_id=job.id).one()
    with tarfile.open(archive.path) as tar:
        names = tar.getnames()
    assert any(n.endswith("root/work.txt") for n in names)
    for own in ("data/backup_system.db", "master.key", "restores/x", "tapes/x"):
        assert not any(n.endswith(own) for n in names), own
    skipped = [line for line in log_lines(job.id, "INFO") if "skipped: StageBackup's own" in line]
    assert len(skipped) == 3, skipped  # data (holding cache), restore root, virtual tapes


def test_restore_targets_never_hold_the_data_directory(app, tmp_path):
    app.config["RESTORE_ROOTS"] = [str(tmp_path)]
    with pytest.raises(ValidationError, match="data directory"):
        service.resolve_target(str(tmp_path))
    with pytest.raises(ValidationError, match="cache"):
        service.resolve_target(os.path.join(app.config["CACHE_DIR"], "x"))
    assert service.resolve_target(str(tmp_path / "elsewhere")) == str(tmp_path / "elsewhere")


def test_the_explorer_is_confined_to_browse_roots(app, client, tmp_path):
    (tmp_path / "share" / "sub").mkdir(parents=True)
    app.config["BROWSE_ROOTS"] = [str(tmp_path / "share")]
    assert client.get("/api/explorer/list", query_string={"path": "/etc"}).status_code == 403
    assert client.get("/explorer", query_string={"path": "/proc/self/fd"}).status_code == 403
    os.symlink("/etc", tmp_path / "share" / "etc-link")
    assert client.get("/api/explorer/list", query_string={"path": str(tmp_path / "share/etc-link")}).status_code == 403
    listing = client.get("/api/explorer/list", query_string={"path": str(tmp_path / "share")})
    assert listing.status_code == 200 and listing.json["parent"] is None
    assert {i["name"] for i in listing.json["items"]} == {"sub", "etc-link"}
    assert client.get("/explorer").status_code == 200  # opens at the first browse root


def test_the_explorer_never_lists_the_data_directory(app, client):
    response = client.get("/api/explorer/list", query_string={"path": app.config["DATA_DIR"]})
    assert response.status_code == 403 and "data directory" in response.json["error"]
    restore_root = app.config["RESTORE_ROOTS"][0]
    os.makedirs(restore_root, exist_ok=True)
    assert client.get("/api/explorer/list", query_string={"path": restore_root}).status_code == 200
