"""Screens of the app: the list, a ticket, compose, register, help and small dialogs."""
