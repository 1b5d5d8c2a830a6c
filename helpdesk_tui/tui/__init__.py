"""The Textual app: screens, widgets, palette and the inert-text door (see app.py)."""
