"""Host guide: a Directory over the host's own database (here: the host's SQLite tables)."""

from __future__ import annotations

import sqlite3

# [start directory]
from collections.abc import Callable

from tokenproviders import Credentials, Secret, Tracker


class HostDirectory:
    """The two questions tokenproviders asks the host, answered from the host's own tables.

    ``tenants_of`` runs before every resolution, so it reads the membership table directly:
    a revoked membership stops every token at once, and no cache can serve a stale answer.
    """

    def __init__(self, db: sqlite3.Connection, bot_password: Callable[[str], str | None]) -> None:
        self.db = db
        self.bot_password = bot_password  # looks a bot secret up in the host's vault

    def tenants_of(self, user: str) -> frozenset[str]:
        rows = self.db.execute("SELECT tenant_slug FROM memberships WHERE user_id = ?", (user,))
        return frozenset(slug for (slug,) in rows)

    def trackers_of(self, tenant: str) -> tuple[Tracker, ...]:
        rows = self.db.execute(
            "SELECT id, kind, url, api_url, title, bot_user, bot_secret_ref FROM bug_trackers"
            " WHERE tenant_slug = ? ORDER BY id",
            (tenant,),
        )
        trackers = []
        for tracker_id, kind, url, api_url, title, bot_user, secret_ref in rows:
            bot = None
            password = self.bot_password(secret_ref) if secret_ref else None
            if password:
                bot = Credentials(api_username=bot_user, api_password=Secret(password))
            trackers.append(
                Tracker(
                    tenant=tenant,
                    id=str(tracker_id),
                    type=kind,  # the tracker-type plugin's name: "jira", "github", ...
                    base_url=url,
                    api_url=api_url,
                    name=title,
                    bot_credentials=bot,
                )
            )
        return tuple(trackers)
# [end directory]


def host_database() -> sqlite3.Connection:
    """The host's own schema, as a host might have it."""
    db = sqlite3.connect(":memory:")
    db.executescript(
        """
        CREATE TABLE memberships (user_id TEXT, tenant_slug TEXT);
        CREATE TABLE bug_trackers (id INTEGER PRIMARY KEY, tenant_slug TEXT, kind TEXT, url TEXT,
                                   api_url TEXT, title TEXT, bot_user TEXT, bot_secret_ref TEXT);
        INSERT INTO memberships VALUES ('alice', 'acme'), ('alice', 'globex'), ('bob', 'acme');
        INSERT INTO bug_trackers VALUES
            (1, 'acme', 'jira', 'https://acme.atlassian.example', NULL, 'Acme Jira', 'bot@acme.example',
             'vault:acme-jira'),
            (2, 'acme', 'github', 'https://github.com/acme/web', NULL, 'acme/web', NULL, 'vault:acme-gh'),
            (3, 'globex', 'github', 'https://github.com/globex/api', NULL, 'globex/api', NULL, NULL);
        """
    )
    return db


def check() -> None:
    from _check import memory_plugins

    from tokenproviders import Directory, Resolver, find_tracker

    vault = {"vault:acme-jira": "jira-bot-token", "vault:acme-gh": "gh-bot-token"}
    directory = HostDirectory(host_database(), vault.get)
    assert isinstance(directory, Directory)  # the protocol is runtime-checkable
    plugins, _ = memory_plugins("jira", "github")
    resolver = Resolver(directory, plugins=plugins)
    assert directory.tenants_of("alice") == {"acme", "globex"}
    jira = find_tracker(directory, "acme", "1")
    assert jira.bot_credentials is not None and jira.bot_credentials.api_password == Secret("jira-bot-token")
    assert resolver.resolve("bob", jira).source == "bot"
    globex_api = find_tracker(directory, "globex", "3")
    assert globex_api.bot_credentials is None
    urls = [choice.url for choice in resolver.trackers_for("alice")]
    assert urls == [
        "https://acme.atlassian.example",
        "https://github.com",
        "https://github.com/acme/web",
        "https://github.com/globex/api",
    ], urls


if __name__ == "__main__":
    check()
    print("host_directory: ok")
