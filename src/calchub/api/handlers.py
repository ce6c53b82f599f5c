"""Importing this module attaches every implemented handler to the registry."""

from __future__ import annotations

import calchub.api.messages  # noqa: F401  (definitions first)
from calchub.accounts import api as _accounts  # noqa: F401
from calchub.billing import api as _billing  # noqa: F401
from calchub.files import api as _files  # noqa: F401
from calchub.files import listing_api as _listing  # noqa: F401
from calchub.licenses import api as _licenses  # noqa: F401
from calchub.projects import api as _projects  # noqa: F401
from calchub.projects import collaborators_api as _collaborators  # noqa: F401
from calchub.support import api as _support  # noqa: F401
from calchub.sync import api as _sync  # noqa: F401
from calchub.userquery import api as _userquery  # noqa: F401
