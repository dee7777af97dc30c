"""Host guide: policies (strict personal credentials, opt-in fallback)."""

from __future__ import annotations

# [start policies]
from tokenproviders import Policies, Policy

policies = Policies(
    # Everywhere: the bot is the last resort, and a broken personal token is an error.
    default=Policy(),
    tenants={
        # Tenant "bank": every bug must carry a real person; the bot is never used.
        "bank": Policy(require_personal=True),
    },
    trackers={
        # One tracker where filing as the bot beats failing when a token has expired;
        # the resolution then says so in .fallback_from and in its reason.
        ("acme", "jira"): Policy(fallback_on_unusable=True),
    },
)
# resolver = Resolver(directory, store, policies=policies)
# [end policies]


def check() -> None:
    from datetime import datetime, timedelta, timezone

    from _check import memory_plugins

    from tokenproviders import (
        ALL_TENANTS,
        Credentials,
        MemoryDirectory,
        NoCredentialsError,
        PersonalTokenUnusableError,
        Resolver,
        Secret,
        Tracker,
    )

    bot = Credentials(api_username="bot", api_password=Secret("bot-token"))
    jira = Tracker(tenant="acme", id="jira", type="jira", base_url="https://jira.acme.example", bot_credentials=bot)
    wiki = Tracker(tenant="acme", id="wiki", type="jira", base_url="https://wiki.acme.example", bot_credentials=bot)
    vault = Tracker(tenant="bank", id="jira", type="jira", base_url="https://jira.bank.example", bot_credentials=bot)
    directory = MemoryDirectory(memberships=[("alice", "acme"), ("alice", "bank")], trackers=[jira, wiki, vault])
    plugins, _ = memory_plugins("jira")
    now = [datetime(2030, 1, 1, tzinfo=timezone.utc)]
    resolver = Resolver(directory, plugins=plugins, policies=policies, clock=lambda: now[0])

    # Strict personal: no personal token in "bank" means no credentials, never the bot.
    try:
        resolver.resolve("alice", vault)
    except NoCredentialsError as exc:
        assert "the policy requires personal credentials" in exc.message
    else:
        raise AssertionError("expected NoCredentialsError")

    # An expired token: an error by default, a declared fallback where the policy allows it.
    tomorrow = now[0] + timedelta(days=1)
    for url in (jira.base_url, wiki.base_url):
        resolver.tokens.set(owner="alice", url=url, scope=ALL_TENANTS, expires_at=tomorrow,
                            credentials=Credentials(api_password=Secret("alice-token")))
    now[0] += timedelta(days=2)
    try:
        resolver.resolve("alice", wiki)
    except PersonalTokenUnusableError as exc:
        assert "expired" in exc.message
    else:
        raise AssertionError("expected PersonalTokenUnusableError")
    resolution = resolver.resolve("alice", jira)
    assert resolution.source == "bot" and resolution.fallback_from and "expired" in resolution.fallback_from
    assert "the policy allows falling back" in resolution.reason


if __name__ == "__main__":
    check()
    print("host_policies: ok")
