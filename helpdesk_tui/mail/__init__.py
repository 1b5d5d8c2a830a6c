"""The wire: parse, thread, auto-reply rules, outgoing MIME, IMAP and SMTP. No store, no UI."""
