"""Database access: table definitions, engine set-up and migrations."""
