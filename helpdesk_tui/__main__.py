"""Allow `python -m helpdesk_tui`."""

from helpdesk_tui.cli import main

raise SystemExit(main())
