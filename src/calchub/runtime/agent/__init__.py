"""The project agent: serves one project's exec, file and copy requests from inside its
sandbox.

It runs under the system interpreter (`/usr/bin/python3 -I`), so it uses the standard library
only, imports nothing from calchub, and refers to its own modules relatively (the hub binds
this folder into the sandbox as a top-level package). Every path is resolved in the
sandbox's own view and as the project's user: other projects' homes and the server's folders
do not exist here, which is what makes symlink escapes impossible.

Modules: `wire` (the framing), `kernel` (namespaces, capabilities, process trees), `execs`
(running commands), `files`, `copies` (rsync between sandboxes), `trees` (a fresh target
copied without rsync), `server` (the worker pool, PID 1 of the sandbox), `scoreboard` (the
workers' states, which the pool reads), `rest` (what the pool becomes while the project is
quiet), `relay` (TLS in front of the agent's socket, for projects on other machines),
`replies` (handlers' failures as replies), `once` (one read without the pool).

Started as `__main__.py serve <config-json>` (the listening socket is inherited, already bound
by the hub), as `__main__.py once <config-json>` (one read of a stopped project, served on an
inherited socket, then it ends), or as `__main__.py rsh HOST CMD...` (the remote shell rsync
spawns in a copy).
"""
