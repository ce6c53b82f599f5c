"""Organizations: named groups of accounts with their own admins (access.py holds the rule,
orgs.py the operations)."""
