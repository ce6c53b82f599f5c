"""Accounts: creation and deletion, passwords, API keys, auth tokens, search."""
