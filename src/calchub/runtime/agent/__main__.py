"""Entry point, run as a script: `python3 -I /opt/calchub/agent/__main__.py serve CONFIG`."""

import os
import sys

if __package__:
    from .main import main
else:
    # -I leaves the script's folder off sys.path; the package is the folder itself.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from agent.main import main  # type: ignore[import-not-found, no-redef]

sys.exit(main(sys.argv))
