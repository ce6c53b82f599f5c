"""Files across projects: durable copies between projects, and public paths."""
