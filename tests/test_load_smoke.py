"""A short run of the load bench (tests/perf/bench_load.py) on SQLite: agents killed mid-run.

Ten seconds, four agent processes, four SIGKILLs of agents, mail arriving from a real Dovecot
and going out to a real aiosmtpd: no lock errors, nothing lost, counters that agree with the
rows, every mail imported exactly once, and an intact database file. The worker is not killed
here: a SIGKILLed worker's lease is only free after its 30 s TTL, which would triple the
test's time; the full bench kills the worker too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imap_server import Dovecot
from tests.perf.bench_load import Params, details, run_load, table


@pytest.mark.slow
def test_short_load_run_loses_nothing(dovecot: Dovecot, tmp_path: Path) -> None:
    params = Params(
        duration=10.0,
        agents=4,
        kills=4,
        tickets=40,
        mail_rate=3.0,
        worker_kill_share=0.0,
        poll=1.0,
    )
    result = run_load("sqlite", params, tmp_path / "load", dovecot=dovecot)
    report = f"{details(result)}\n{table([result])}"
    assert result.agent_kills == 4, report
    assert result.actions > 0 and result.writes > 0, report
    assert not result.crashes, report
    assert result.lock_errors == 0, report
    assert result.lost_updates == 0, report
    assert result.counter_mismatches == 0, report
    assert result.mails_appended > 0, report
    assert result.mails_ingested == result.mails_appended, report
    assert result.sent_not_received == 0 and result.unsent == 0, report
    # No worker was killed, so no mail can have gone out twice.
    assert result.duplicates == 0, report
    assert result.integrity == "ok", report
