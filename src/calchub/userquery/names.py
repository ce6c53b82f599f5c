"""Rules for account, project and public-path names: they become URL segments of shared
files (`/<account>/<project>/<path>`), so they avoid uuids, spaces and the site's own words."""

from __future__ import annotations

import re

from calchub.ids import is_valid_uuid

_ACCOUNT_NAME = re.compile(r"^[a-z\d](?:[a-z\d]|-(?=[a-z\d])){0,38}$", re.IGNORECASE)
_PROJECT_NAME = re.compile(r"^[.a-z\d](?:[.a-z\d]|-(?=[.a-z\d])){0,99}$", re.IGNORECASE)

# Words a name may not be: paths the site uses or may use, and names that would mislead.
_RESERVED_WORDS = """
    about access account accounts action actions activate admin administration administrator
    ads alive all analytics anon anonymous any api app apps archive asset assets auth
    authentication avatar backup beta billing bin blob blobs blog blogs bot bots business
    cache calendar cancel captcha cdn central chat check checkout client clients cloud cocalc
    calchub code comment comments community company compute config configuration connect
    contact contribute cookies create customer customers dashboard data db default delete
    demo dev developer developers directory discover doc docs documentation domain download
    downloads edit editor email embed enterprise error errors event events explore faq
    feature features feed feedback file files forgot form forum forums free get guest guide
    help home host hosting hub id image images index info internal invite invitations invoice
    issues job jobs join js json lab labs learn legal library license licenses link links
    list listings log login logout logs mail manager map me media member members mention
    mentions message messages metrics mine mobile name new news newsletter node none
    notification notifications null oauth official open-source operator order organization
    organizations owner owners page pages password password-reset payment payments ping plan
    plans plugin plugins policy portal post posts premium press pricing privacy private
    profile profiles project projects public purchase query raw read readme recent redeem
    register registration release releases remove report reports request requests reset
    resources root rss save search secure security server service services session sessions
    setting settings setup share shop sign-in sign-up signin signout signup site sitemap
    sites smtp source spam sql src ssh ssl sso staff stage staging start stat state static
    stats status storage store subscribe subscriptions support sys sysadmin system tag team
    teams template templates terms test testing tests theme themes tmp todo token tool tools
    tos tour try tutorial undef unsubscribe update updates upload uploads url usage user
    username users version video webapp webhook webhooks webmaster website welcome widget
    wiki www yourname
    """
RESERVED = frozenset(_RESERVED_WORDS.split())


def account_name_problem(name: str) -> str | None:
    """CoCalc's message for an unusable account name, or None."""
    if len(name) > 39:
        return "name must have at most 39 characters"
    if is_valid_uuid(name):
        return "name must not be a v4 UUID"
    if "--" in name:
        return "name must not contain consecutive hyphens"
    if not _ACCOUNT_NAME.match(name):
        return "name must contain only a-z,A-Z,0-9, or -, and not start with hyphen."
    if name.lower() in RESERVED:
        return f'name "{name}" is reserved -- not available'
    return None


def project_name_problem(name: str) -> str | None:
    """CoCalc's message for an unusable project name, or None."""
    if len(name) > 100:
        return "name must have at most 100 characters"
    if is_valid_uuid(name) or not _PROJECT_NAME.match(name):
        return (
            "name must contain only a-z,A-Z,0-9, . or -, and not start with hyphen or have spaces."
        )
    return None


def public_path_name_problem(name: str) -> str | None:
    """As project names, and not one of the reserved words."""
    problem = project_name_problem(name)
    if problem is None and name.lower() in RESERVED:
        return f'name "{name}" is reserved -- not available'
    return problem
