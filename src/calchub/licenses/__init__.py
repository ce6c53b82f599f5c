"""Site licenses: which projects use them, applying them to projects, and what they add to
a project's quota."""
