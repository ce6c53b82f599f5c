"""Messages between accounts: sending (send.py) and reading one's mailboxes (get.py)."""
