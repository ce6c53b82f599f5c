"""Jupyter kernels inside projects, for every edge: kernel listings, executes with CoCalc's
semantics (silent history, limits, its output format, the hub's result cache), warm pools,
persistent sessions, and a project's kernel processes.

The kernels themselves run inside each project's sandbox (calchub.runtime.jupyter); this
package decides who may use them, which limits apply, and what is cached.
"""
