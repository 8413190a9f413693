"""The tapes page (/tapes): inventory, a tape's files, and the drive and cartridge actions on the virtual drive,
done through the same services as ``flask tape``; the drive card's states in both languages."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from flask_babel import refresh

from stagebackup.extensions import db
from stagebackup.models import AuditEvent
from stagebackup.tape import cartridge, vlibrary
from stagebackup.tape_models import Drive, Tape, TapeFile

from .web_support import csrf_token, running_job


def _post(client, url, **data):
    return client.post(url, data={**data, "csrf_token": csrf_token(client, "/tapes")}, follow_redirects=True)


def _flash(response) -> str:
    found = re.findall(r'class="alert [^"]*flash"[^>]*>\s*(.*?)\s*<', response.get_data(as_text=True))
    return " ".join(html.unescape(m) for m in found)


def _state(client, drive="vtape0", lang=None) -> tuple[str, str]:
    if lang:
        client.set_cookie("lang", lang)
        refresh()  # the test's app context outlives requests: forget the locale the last one chose
    page = client.get("/backup").get_data(as_text=True)
    match = re.search(rf'data-drive="{drive}".*?<div class="small drive-state" data-state="(\w+)">(.*?)</div>',
                      page, re.S)
    assert match, page
    return match.group(1), re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", match.group(2))))


def test_label_the_blank_tape_and_see_it_in_the_inventory_and_its_files(client, app):
    done = _post(client, "/tapes/drives/vtape0/label", label="TAPE001", pool="night")
    assert done.status_code == 200 and "已在 vtape0 中为磁带写入卷标 TAPE001（池 night）" in _flash(done)
    tape = db.session.scalar(db.select(Tape).where(Tape.label == "TAPE001"))
    assert tape.pool == "night" and db.session.get(Drive, "vtape0").loaded_label == "TAPE001"
    page = client.get("/tapes").get_data(as_text=True)
    row = page[page.index('data-label="TAPE001"'):]
    row = row[:row.index("</tr>")]
    # Labelled, nothing written yet: blank.
    assert "空白" in row and "night" in row and "磁带机 vtape0" in row and "progress-bar pct-0" in row
    files = client.get("/tapes/TAPE001").get_data(as_text=True)
    assert 'data-file="0"' in files and "卷标" in files
    assert client.get("/tapes/NOPE").status_code == 404
    state, text = _state(client)
    assert state == "loaded" and text.startswith(f"已装入磁带 TAPE001 · 池 night · 剩余 {_free(tape)} · ")


def _free(tape: Tape) -> str:
    from stagebackup.errors import human_bytes
    return human_bytes(tape.capacity_bytes - tape.bytes_used)


def test_label_over_a_labelled_tape_needs_its_label_typed(client):
    _post(client, "/tapes/drives/vtape0/label", label="TAPE001")
    refused = _post(client, "/tapes/drives/vtape0/label", label="TAPE002")
    assert _flash(refused) == ("磁带机 vtape0 中的磁带已有卷标 TAPE001。要覆盖它（其数据将丢失），"
                               "请在确认框中输入 TAPE001。")
    wrong = _post(client, "/tapes/drives/vtape0/label", label="TAPE002", confirm="TAPE00")
    assert "请在确认框中输入 TAPE001" in _flash(wrong)
    assert db.session.scalar(db.select(Tape).where(Tape.label == "TAPE002")) is None
    forced = _post(client, "/tapes/drives/vtape0/label", label="TAPE002", confirm="TAPE001")
    assert "写入卷标 TAPE002" in _flash(forced)
    states = {t.label.split("~")[0]: t.state for t in db.session.scalars(db.select(Tape))}
    assert states == {"TAPE001": "retired", "TAPE002": "labelled"}


def test_create_eject_load_and_write_protect_cartridges(client, app):
    _post(client, "/tapes/drives/vtape0/label", label="TAPE001")
    vdir = app.config["VTAPE_DIR"]
    created = _post(client, "/tapes/cartridges", name="spare-2")
    assert "已创建空白虚拟磁带 spare-2" in _flash(created)
    assert "已存在" in _flash(_post(client, "/tapes/cartridges", name="spare-2"))
    assert "无效" in _flash(_post(client, "/tapes/cartridges", name="../x"))
    assert "请先退出" in _flash(_post(client, "/tapes/cartridges/vtape0-001/write-protect", protected="1"))
    ejected = _post(client, "/tapes/drives/vtape0/eject")
    assert "已从 vtape0 退出磁带" in _flash(ejected) and _state(client)[0] == "empty"
    assert "空：未装入磁带" in _state(client)[1]
    protected = _post(client, "/tapes/cartridges/vtape0-001/write-protect", protected="1")
    assert "已设为写保护" in _flash(protected)
    assert cartridge.read_meta(vlibrary.cartridge_path(vdir, "vtape0-001"))["write_protected"] is True
    assert db.session.scalar(db.select(Tape).where(Tape.label == "TAPE001")).write_protected
    assert "写保护" in client.get("/tapes").get_data(as_text=True).split('data-label="TAPE001"')[1].split("</tr>")[0]
    loaded = _post(client, "/tapes/drives/vtape0/load", cartridge="spare-2")
    assert "已在 vtape0 中装入 spare-2" in _flash(loaded)
    assert _state(client)[0] == "blank" and vlibrary.loaded_in(vdir, "spare-2") == ["vtape0"]
    assert "磁带机 vtape0 没有虚拟磁带 nope" in _flash(_post(client, "/tapes/drives/vtape0/load", cartridge="nope"))


def test_a_busy_drive_is_refused_at_once(client, tmp_path):
    _post(client, "/tapes/drives/vtape0/label", label="TAPE001")
    job_id = running_job(tmp_path, done=("scan", "compress"), current=("copy",))
    db.session.get(Drive, "vtape0").busy_job_id = job_id
    db.session.commit()
    for url, data in (("/tapes/drives/vtape0/label", {"label": "X2", "confirm": "TAPE001"}),
                      ("/tapes/drives/vtape0/eject", {}), ("/tapes/drives/vtape0/load", {"cartridge": "vtape0-001"})):
        refused = _post(client, url, **data)
        assert f"磁带机 vtape0 忙：另一个进程正在使用 (job #{job_id})" in _flash(refused), url
    assert db.session.get(Drive, "vtape0").loaded_label == "TAPE001"
    assert db.session.scalar(db.select(Tape).where(Tape.label == "X2")) is None


@pytest.mark.parametrize("user", ["viewer", "operator"])
def test_actions_need_an_admin(app, user):
    client = app.test_client(user=user)
    page = client.get("/tapes")
    assert page.status_code == 200 and "磁带清单" in page.get_data(as_text=True)
    assert "label-form" not in page.get_data(as_text=True)  # no buttons that could only answer 403
    token = csrf_token(client, "/tapes")
    for url in ("/tapes/drives/vtape0/label", "/tapes/drives/vtape0/load", "/tapes/drives/vtape0/eject",
                "/tapes/cartridges", "/tapes/cartridges/vtape0-001/write-protect", "/tapes/drives/vtape0/erase",
                "/tapes/pools", "/tapes/recycle"):
        assert client.post(url, data={"csrf_token": token, "label": "A", "name": "c"}).status_code == 403, url
    assert db.session.scalar(db.select(Tape)) is None


def test_drive_states_in_both_languages(client, app):
    client.get("/tapes")
    from stagebackup.tape import admin
    admin.refresh_drives(app.config)  # what a worker does at start: the blank cartridge of a new drive
    state, text = _state(client)
    assert state == "blank" and text.startswith("已装入空白磁带：请先写入卷标 写卷标 · ")
    state, text = _state(client, lang="en")
    assert state == "blank" and text.startswith("Blank tape loaded: label it first")
    assert "未装入" not in text and "flask tape" not in text
    db.session.add(Drive(name="lto-b", device="/dev/nst1", online=False, message="x",
                         message_template="drive %(drive)s is offline or not present (%(detail)s): check its "
                                          "cable, power and device path",
                         message_values={"drive": "lto-b", "detail": "No such device"}))
    db.session.add(Drive(name="lto-c", device="/dev/nst2", online=True, loaded_label="L1", file_number=3,
                         block_number=0, density=0x5E, status_flags=["ONLINE", "EOF"]))
    db.session.commit()
    state, text = _state(client, "lto-b", lang="en")
    assert state == "offline" and "drive lto-b is offline or not present (No such device)" in text
    state, text = _state(client, "lto-b", lang="zh_CN")
    assert state == "offline" and "离线" in text and "lto-b" in text and "is offline" not in text
    page = client.get("/backup").get_data(as_text=True)
    mtio = page[page.index('data-drive="lto-c"'):]
    assert "文件 3，块 0" in mtio and "0x5e" in mtio and "ONLINE EOF" in mtio
    assert "TapeAlert: st 驱动不报告" in mtio  # not faked: the st driver does not give them
    assert "MTIOCGET" not in page[page.index('data-drive="vtape0"'):page.index('data-drive="lto-b"')]


def test_busy_and_waiting_drive_states(client, tmp_path):
    from stagebackup.models import Job, Project
    from stagebackup.tape_models import TapeFile

    job_id = running_job(tmp_path, done=("scan", "compress"), current=("copy",))
    tape = Tape(label="L7", pool="night", uuid="u-7", capacity_bytes=10 << 30, bytes_used=4 << 30)
    db.session.add(tape)
    db.session.flush()
    db.session.add(TapeFile(tape_id=tape.id, file_number=5, kind="archive", job_id=job_id, void=True))
    db.session.get(Job, job_id).rate_bytes_s = float(100 << 20)  # 6 GiB free at 100 MiB/s: 61 s
    db.session.add(Drive(name="vtape0", device="virtual", online=True, loaded_label="L7", busy_job_id=job_id,
                         message=f"job #{job_id} writing"))
    db.session.commit()
    state, text = _state(client)
    assert state == "busy" and text.startswith("正在写入磁带 L7 · 正在写文件 5 · 100.0 MiB/s · 按此速率 ")
    assert "writing" not in text
    state, text = _state(client, lang="en")
    assert state == "busy" and text.startswith("Writing to tape L7 · writing file 5 · 100.0 MiB/s · full in ")
    job = db.session.get(Job, job_id)
    job.status = "waiting_media"
    job.drive = "vtape0"
    db.session.get(Project, job.project_id).dest_pool = "night"
    row = db.session.get(Drive, "vtape0")
    row.busy_job_id, row.message = None, "load a new tape in vtape0 (pool night): tape L7 is full"
    db.session.commit()
    state, text = _state(client, lang="zh_CN")
    assert state == "waiting" and text.startswith("等待装入磁带 · ") and "load a new tape" not in text
    page = client.get("/backup").get_data(as_text=True)
    assert "请在 vtape0 中装入新磁带（池 night）" in page and "起等待" in page.split('class="waiting-since"')[1][:40]


def test_a_label_the_inventory_has_needs_it_typed(client):
    _post(client, "/tapes/drives/vtape0/label", label="TAPE001")
    _post(client, "/tapes/cartridges", name="spare")
    _post(client, "/tapes/drives/vtape0/load", cartridge="spare")
    client.set_cookie("lang", "en")
    refresh()
    refused = _post(client, "/tapes/drives/vtape0/label", label="TAPE001")
    assert _flash(refused) == ("Label TAPE001 already belongs to another tape in the inventory. To use it anyway "
                               "(that tape is retired), type TAPE001 in the confirmation box.")
    assert db.session.get(Drive, "vtape0").loaded_label is None
    done = _post(client, "/tapes/drives/vtape0/label", label="TAPE001", confirm="TAPE001")
    assert _flash(done) == "Labelled the tape in vtape0 as TAPE001 (pool default)."
    assert db.session.get(Drive, "vtape0").loaded_label == "TAPE001"


def test_an_unreadable_drive_is_offline_with_its_reason_translated(client, app, tmp_path):
    from stagebackup.tape import admin

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    app.config["VTAPE_DIR"] = str(blocker)
    admin.refresh_drives(app.config)
    state, text = _state(client)
    assert state == "offline" and text.startswith("离线 · 虚拟磁带机 vtape0 离线") and str(blocker) in text
    state, text = _state(client, lang="en")
    assert state == "offline" and text.startswith(f"offline · virtual drive vtape0 is offline: its directory {blocker}")


def _row(page: str, label: str, kind: str = "tape-row") -> str:
    row = page[page.index(f'<tr class="{kind}" data-label="{label}"'):]
    return row[:row.index("</tr>")]


def test_pools_expiry_recycle_erase_and_label_over_on_the_page(client, app, tmp_path):
    from tests.integration.test_tape_pools import backup

    saved = _post(client, "/tapes/pools", name="weekly", retention_days="7", allocation="append")
    assert "已保存磁带池 weekly" in _flash(saved)
    assert "天数" in _flash(_post(client, "/tapes/pools", name="bad", retention_days="-3"))
    _post(client, "/tapes/drives/vtape0/label", label="TAPE001", pool="weekly")
    job = backup(app, tmp_path, "p1", pool="weekly")
    page = client.get("/tapes").get_data(as_text=True)
    assert "可追加" in _row(page, "TAPE001") and 'data-pool="weekly"' in page and "7 天" in page
    assert "没有可重复使用的磁带" in page

    refused = _post(client, "/tapes/drives/vtape0/label", label="TAPE002", confirm="TAPE001")
    assert "TAPE001" in _flash(refused) and "未过期" in _flash(refused)
    assert "未过期" in _flash(_post(client, "/tapes/drives/vtape0/erase", confirm="TAPE001"))

    # Eight days later (the rows aged, as a clock would): every file is past the pool's 7 days.
    for f in db.session.scalars(db.select(TapeFile).where(TapeFile.job_id == job.id)):
        f.written_at -= timedelta(days=8)
    db.session.commit()
    page = client.get("/tapes").get_data(as_text=True)
    assert "全部文件已过期，待标记" in _row(page, "TAPE001", "reusable-row") and 'id="recycle-tapes"' in page
    assert "已标记为过期的磁带：TAPE001" in _flash(_post(client, "/tapes/recycle"))
    page = client.get("/tapes").get_data(as_text=True)
    assert "已过期" in _row(page, "TAPE001") and 'id="recycle-tapes"' not in page
    assert "tape-file-expired" in client.get("/tapes/TAPE001").get_data(as_text=True)
    assert "没有新过期的磁带" in _flash(_post(client, "/tapes/recycle"))

    wrong = _post(client, "/tapes/drives/vtape0/erase", confirm="TAPE00")
    assert "输入其卷标" in _flash(wrong)
    erased = _post(client, "/tapes/drives/vtape0/erase", confirm="TAPE001")
    assert "已擦除 vtape0 中的磁带 TAPE001" in _flash(erased)
    assert _state(client)[0] == "blank"
    events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action.like("tape.%"))
                                .order_by(AuditEvent.id)).all()
    assert [(e.action, e.target) for e in events][-2:] == [("tape.recycle", "TAPE001"), ("tape.erase", "TAPE001")]

    _post(client, "/tapes/drives/vtape0/label", label="OTHER1", pool="other")
    only = client.get("/tapes?pool=weekly").get_data(as_text=True)
    assert 'data-label="OTHER1"' not in only and "TAPE001~" in only
    everything = client.get("/tapes?pool=nonesuch").get_data(as_text=True)
    assert 'data-label="OTHER1"' in everything


def test_label_over_an_expired_tape_needs_its_label_typed(client, app, tmp_path):
    from tests.integration.test_tape_pools import backup

    _post(client, "/tapes/drives/vtape0/label", label="TAPE001", pool="short")
    _post(client, "/tapes/pools", name="short", retention_days="1")
    job = backup(app, tmp_path, "p1", pool="short")
    for f in db.session.scalars(db.select(TapeFile).where(TapeFile.job_id == job.id)):
        f.written_at -= timedelta(days=2)
    db.session.commit()
    refused = _post(client, "/tapes/drives/vtape0/label", label="TAPE001", pool="short")
    assert "请在确认框中输入 TAPE001" in _flash(refused)
    assert db.session.scalar(db.select(Tape).where(Tape.label == "TAPE001")).state == "expired"  # marked on the way
    done = _post(client, "/tapes/drives/vtape0/label", label="TAPE001", pool="short", confirm="TAPE001")
    assert "写入卷标 TAPE001" in _flash(done)
    events = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action.like("tape.%"))
                                .order_by(AuditEvent.id)).all()
    assert [(e.action, e.target) for e in events][-2:] == [("tape.recycle", "TAPE001"), ("tape.label", "TAPE001")]
    assert events[-1].details["over"] == "TAPE001"
