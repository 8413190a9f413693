"""The retention planner (restic/borg ``forget``) with a frozen clock: no database, no files."""

from __future__ import annotations

from datetime import datetime, timedelta

from stagebackup.retention import Candidate, Policy, plan_prune

NOW = datetime(2026, 12, 31, 23, 0)


def daily_runs(days: int, at_hour: int = 2) -> list[Candidate]:
    """One backup a day at 02:00 for ``days`` days up to NOW; the job is its index (0 = oldest)."""
    first = NOW.replace(hour=at_hour, minute=0) - timedelta(days=days - 1)
    return [Candidate(index, first + timedelta(days=index)) for index in range(days)]


def kept(plan) -> list:
    return sorted(job for job, keep, _ in plan if keep)


def reasons_of(plan, job) -> set[str]:
    return {key for j, _, why in plan if j == job for key, _ in why}


def test_gfs_over_a_simulated_year_of_daily_runs():
    runs = daily_runs(365)
    plan = plan_prune(runs, Policy(daily=7, weekly=4, monthly=12, yearly=3), NOW)
    by_job = {c.job: c.at for c in runs}
    keep = kept(plan)
    # 7 daily (the last 7 days) + the newest of 4 ISO weeks + the newest of 12 months, overlapping.
    last_seven = set(range(358, 365))
    assert last_seven <= set(keep)
    weeks = {by_job[j].isocalendar()[:2] for j in keep if "weekly" in reasons_of(plan, j)}
    assert len(weeks) == 4
    months = sorted((by_job[j].year, by_job[j].month) for j in keep if "monthly" in reasons_of(plan, j))
    assert months == [(2026, m) for m in range(1, 13)]
    # Each monthly keeper is the last day of its month (the newest backup in it), except December (today).
    for job in keep:
        if "monthly" in reasons_of(plan, job) and by_job[job].month != 12:
            assert (by_job[job] + timedelta(days=1)).month != by_job[job].month
    years = [j for j in keep if "yearly" in reasons_of(plan, j)]
    assert years == [364]  # one year of runs: one yearly keeper, the newest
    assert len(keep) == len(last_seven | {j for j in keep if j < 358})
    assert 7 + 11 <= len(keep) <= 7 + 4 + 12  # the overlap makes it fewer than the sum
    gone = [job for job, k, why in plan if not k]
    assert len(gone) == 365 - len(keep) and all(why == [("expired", None)] for _, k, why in plan if not k)


def test_keep_last_and_within_days():
    runs = daily_runs(30)
    plan = plan_prune(runs, Policy(last=3), NOW)
    assert kept(plan) == [27, 28, 29]
    plan = plan_prune(runs, Policy(within_days=10), NOW)
    assert kept(plan) == list(range(20, 30))
    assert "within" in reasons_of(plan, 20) and 19 not in kept(plan)


def test_a_failed_last_run_keeps_everything():
    runs = daily_runs(30)
    plan = plan_prune(runs, Policy(last=1), NOW, last_run_failed=True)
    assert kept(plan) == list(range(30))
    assert all(why == [("last_run_failed", None)] for _, _, why in plan)


def test_a_backup_being_restored_is_kept():
    runs = daily_runs(10)
    runs[2] = Candidate(2, runs[2].at, in_use=True)
    plan = plan_prune(runs, Policy(last=2), NOW)
    assert kept(plan) == [2, 8, 9]
    assert reasons_of(plan, 2) == {"in_use"}


def test_the_newest_backup_is_always_kept_and_no_policy_keeps_all():
    runs = daily_runs(5)
    plan = plan_prune(runs, Policy(within_days=1), NOW + timedelta(days=30))
    assert kept(plan) == [4] and reasons_of(plan, 4) == {"newest"}
    assert kept(plan_prune(runs, Policy(), NOW)) == list(range(5))
    assert plan_prune([], Policy(last=1), NOW) == []


def test_several_backups_a_day_keep_the_newest_of_the_day():
    first = NOW.replace(hour=1)
    runs = [Candidate(i, first + timedelta(hours=i)) for i in range(0, 20, 2)] + \
           [Candidate(100 + i, first - timedelta(days=1) + timedelta(hours=i)) for i in range(0, 20, 2)]
    plan = plan_prune(runs, Policy(daily=2), NOW)
    assert kept(plan) == [18, 118]
