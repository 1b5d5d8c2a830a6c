"""Reusable widgets: the virtual ticket list and the views sidebar."""
