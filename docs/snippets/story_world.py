"""The world of the landing page's story: tenant ``acme``, its Jira, a bot, Alice and Bob.

The Jira here is the in-memory tracker type from :mod:`tokenproviders.testing` registered under
the name ``jira``: it records every issue under whoever authenticated, like the real one, but
needs no server. The pages' doctests import this module (``doctest_path`` in ``conf.py``);
``tests/docs`` runs it too.
"""

from __future__ import annotations

from tokenproviders import ALL_TENANTS, Credentials, MemoryDirectory, Plugins, Resolver, Secret, Tracker
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

__all__ = ["ALL_TENANTS", "Credentials", "Secret", "backend", "jira", "resolver", "reporter_of"]

# The "Jira server": which token belongs to whom.
jira_type = MemoryTrackerType(name="jira")
backend = jira_type.backend
backend.add_user("kiwi-bot", "bot-token", username="bot@acme.example")
backend.add_user("alice", "alice-token", username="alice@acme.example")

directory = MemoryDirectory()
directory.add_member("alice", "acme")
directory.add_member("bob", "acme")
jira = Tracker(
    tenant="acme",
    id="jira",
    type="jira",
    name="Acme Jira",
    base_url="https://acme.atlassian.example",
    bot_credentials=Credentials(api_username="bot@acme.example", api_password=Secret("bot-token")),
)
directory.add_tracker(jira)

resolver = Resolver(directory, plugins=Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(jira_type)]))


def reporter_of(issue_id: str) -> str:
    """Who the tracker recorded as the reporter of an issue."""
    return backend.issues[issue_id].reporter


def check() -> None:
    issue = resolver.report_issue("bob", jira, title="Checkout is slow")
    assert reporter_of(issue.id) == "kiwi-bot"
    assert issue.resolution is not None and issue.resolution.source == "bot"


if __name__ == "__main__":
    check()
    print("story_world: ok")
