"""Projects: creation, membership and permissions, run state, exec and text files."""
