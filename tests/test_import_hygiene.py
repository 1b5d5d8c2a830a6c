"""The headless core never loads the UI libraries: the worker and scripts stay light."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import json, sys
import helpdesk_tui.store, helpdesk_tui.store.models, helpdesk_tui.desk.service
import helpdesk_tui.desk.session, helpdesk_tui.config, helpdesk_tui.mail.msgid
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))))
"""


def test_core_imports_no_textual_or_rich() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_package_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, helpdesk_tui; heavy = ('textual', 'rich', 'sqlmodel', 'sqlalchemy'); "
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
