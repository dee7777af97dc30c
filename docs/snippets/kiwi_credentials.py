"""Kiwi TCMS: EXTERNAL_ISSUE_RPC_CREDENTIALS backed by the tokenproviders resolver.

The visible parts are the module a Kiwi deployment adds (say ``myhost/tokens.py``); ``check()``
runs them against stand-ins for Kiwi's objects (``issue_tracker.request``,
``issue_tracker.bug_system``), so no Kiwi is needed to test them.
"""

# Each part a page shows carries its own imports, so imports sit between the parts.
# ruff: noqa: E402

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# [start directory]
from tokenproviders import Credentials, Secret, Tracker

#: Kiwi's tracker classes (BugSystem.tracker_type) and the tokenproviders plugin for each.
KIWI_TYPES = {
    "tcms.issuetracker.types.JIRA": "jira",
    "tcms.issuetracker.types.GitHub": "github",
    "tcms.issuetracker.types.Gitlab": "gitlab",
    "tcms.issuetracker.types.Redmine": "redmine",
    "tcms.issuetracker.types.Bugzilla": "bugzilla",
    "tcms.issuetracker.azure_boards.AzureBoards": "azureboards",
}


class KiwiDirectory:
    """tokenproviders' Directory over Kiwi's own models.

    ``tenants_of_user(user_pk)`` returns the schema names of the tenants the user may enter
    (with kiwitcms-tenants: the tenants whose ``authorized_users`` include the user, and those
    they own; a single-tenant Kiwi returns one fixed name). ``bug_systems_of(tenant)`` returns
    that tenant's ``BugSystem`` rows (inside ``schema_context(tenant)`` with django-tenants).
    """

    def __init__(
        self,
        tenants_of_user: Callable[[str], Iterable[str]],
        bug_systems_of: Callable[[str], Iterable[Any]],
    ) -> None:
        self._tenants_of_user = tenants_of_user
        self._bug_systems_of = bug_systems_of

    def tenants_of(self, user: str) -> frozenset[str]:
        return frozenset(self._tenants_of_user(user))

    def trackers_of(self, tenant: str) -> tuple[Tracker, ...]:
        trackers = []
        for bug_system in self._bug_systems_of(tenant):
            kind = KIWI_TYPES.get(bug_system.tracker_type)
            if kind is None:
                continue  # a Kiwi tracker class without a tokenproviders plugin
            bot = None
            if bug_system.api_password:  # Kiwi keeps these in its own table: wrap them at once
                bot = Credentials(api_username=bug_system.api_username or None,
                                  api_password=Secret(bug_system.api_password))
            trackers.append(Tracker(tenant=tenant, id=str(bug_system.pk), type=kind, name=bug_system.name,
                                    base_url=bug_system.base_url, api_url=bug_system.api_url or None,
                                    bot_credentials=bot))
        return tuple(trackers)
# [end directory]


# [start credentials]
from tokenproviders import Resolver

#: Built once at start-up (e.g. in an AppConfig.ready()): see "Choose a store" and "Configure keys".
resolver: Resolver


def tenant_of(request: Any) -> str:
    """The tenant the request is served in: django-tenants sets ``request.tenant``."""
    tenant = getattr(request, "tenant", None)
    return tenant.schema_name if tenant is not None else "public"


def rpc_credentials(issue_tracker: Any) -> tuple[str, str] | None:
    """Kiwi's EXTERNAL_ISSUE_RPC_CREDENTIALS: the credentials of the person acting.

    Kiwi calls this with its IssueTracker object before it talks to the tracker, and uses the
    pair we return instead of the BugSystem's own (bot) credentials.
    """
    request = issue_tracker.request
    if request is None or not request.user.is_authenticated:
        # No person is acting (automated tests, background jobs): Kiwi uses the BugSystem's
        # own credentials, which is the bot. That is the one case we return None.
        return None
    tracker = resolver.tracker(tenant_of(request), str(issue_tracker.bug_system.pk))
    # Raises NotAuthorizedError, NoCredentialsError or PersonalTokenUnusableError: let them
    # reach the user. Returning None instead would make Kiwi file the bug as the bot, silently.
    resolution = resolver.resolve(str(request.user.pk), tracker)
    credentials = resolution.credentials
    # The boundary: Kiwi wants plain strings, so the secret is revealed here and nowhere
    # else. From here on it is Kiwi's (its client objects hold it): never log this tuple.
    return (credentials.api_username or "", credentials.api_password.reveal())
# [end credentials]


def check() -> None:
    from types import SimpleNamespace

    from _check import memory_plugins

    from tokenproviders import ALL_TENANTS, NotAuthorizedError, PersonalTokenUnusableError

    global resolver
    jira = SimpleNamespace(pk=7, name="Acme Jira", tracker_type="tcms.issuetracker.types.JIRA",
                           base_url="https://acme.atlassian.example", api_url="",
                           api_username="kiwi-bot@acme.example", api_password="bot-token")
    other = SimpleNamespace(pk=8, name="Mantis", tracker_type="trackers_integration.issuetracker.Mantis",
                            base_url="https://mantis.example", api_url="", api_username="", api_password="")
    members = {"1": ["acme"], "2": ["acme"], "3": ["globex"]}
    directory = KiwiDirectory(lambda user: members.get(user, []),
                              lambda tenant: [jira, other] if tenant == "acme" else [])
    plugins, _ = memory_plugins("jira")
    resolver = Resolver(directory, plugins=plugins)

    def issue_tracker(user_pk: int | None) -> Any:
        request = None
        if user_pk is not None:
            request = SimpleNamespace(user=SimpleNamespace(pk=user_pk, is_authenticated=True),
                                      tenant=SimpleNamespace(schema_name="acme"))
        return SimpleNamespace(request=request, bug_system=jira)

    assert [t.id for t in directory.trackers_of("acme")] == ["7"]
    assert rpc_credentials(issue_tracker(None)) is None
    assert rpc_credentials(issue_tracker(2)) == ("kiwi-bot@acme.example", "bot-token")
    resolver.tokens.set(owner="1", url=jira.base_url, scope=ALL_TENANTS,
                        credentials=Credentials(api_username="alice@acme.example", api_password=Secret("alice")))
    assert rpc_credentials(issue_tracker(1)) == ("alice@acme.example", "alice")
    try:
        rpc_credentials(issue_tracker(3))
    except NotAuthorizedError:
        pass
    else:
        raise AssertionError("a user of another tenant must not get credentials")
    assert issubclass(PersonalTokenUnusableError, Exception)


if __name__ == "__main__":
    check()
    print("kiwi_credentials: ok")
