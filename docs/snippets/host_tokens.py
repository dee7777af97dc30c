"""Host guide: the drop-down, saving and verifying tokens, reading a Resolution, errors."""

# Each part a page shows carries its own imports, so imports sit between the parts.
# ruff: noqa: E402

from __future__ import annotations

from typing import Any

# [start dropdown]
from tokenproviders import ALL_TENANTS, Credentials, Resolver, Secret


def token_form_choices(resolver: Resolver, user: str) -> list[dict[str, Any]]:
    """The "Add a personal token" drop-down: every URL the user may store a token for."""
    tracker_type = resolver.tracker_type
    return [
        {
            "url": choice.url,
            "label": f"{choice.title} ({choice.url})",
            "service_wide": choice.kind == "service",  # e.g. https://github.com: every repository
            "tenants": choice.tenants,  # offer "this tenant" or "all my tenants" as the scope
            "fields": [  # what the form asks for, with the labels and help the plugin declares
                {"name": f.name, "label": f.label, "help": f.help, "required": f.required, "secret": f.secret}
                for f in tracker_type(choice.type).fields
            ],
        }
        for choice in resolver.trackers_for(user)
    ]
# [end dropdown]


# [start save]
from tokenproviders import (
    ConfigurationError,
    CredentialsRejectedError,
    InvalidInputError,
    NotAuthorizedError,
    UnknownTrackerError,
)


def save_token(resolver: Resolver, user: str, form: dict[str, str]) -> str:
    """Store the token from the form after the tracker has accepted it; return a message."""
    scope = ALL_TENANTS if form["scope"] == "all" else form["scope"]
    credentials = Credentials(
        api_username=form.get("api_username") or None,
        api_password=Secret(form["api_password"]),  # wrapped at once: it never shows again
    )
    try:
        # Whoami (nothing stored) on a tracker the token would serve and may be sent to;
        # raises if none of the user's tenants has one.
        identity = resolver.tokens.verify(user, form["url"], credentials, scope=scope)
        resolver.tokens.set(owner=user, url=form["url"], scope=scope, credentials=credentials,
                            label=form.get("label", ""))
    except CredentialsRejectedError as exc:
        return f"The tracker rejected this token: {exc.hint}"
    except (InvalidInputError, NotAuthorizedError, UnknownTrackerError, ConfigurationError) as exc:
        return f"Not saved: {exc}"
    return f"Saved. The tracker knows you as {identity.login}."
# [end save]


# [start verify]
def check_my_access(resolver: Resolver, user: str, tenant: str, tracker_id: str) -> str:
    """The "Who will the tracker record?" button next to each tracker."""
    tracker = resolver.tracker(tenant, tracker_id)
    identity = resolver.verify(user, tracker)  # whoami with exactly the resolved credentials
    resolution = resolver.resolve(user, tracker)
    return f"{tracker.name} will record {identity.login} ({resolution.source} credentials)."
# [end verify]


# [start explain]
from tokenproviders import Resolution


def explain(resolution: Resolution) -> dict[str, Any]:
    """What a host shows or logs about a decision. Never the credentials themselves."""
    shown: dict[str, Any] = {
        "tracker": f"{resolution.tenant}/{resolution.tracker.id}",
        "user": resolution.user,
        "source": resolution.source,  # "personal", "bot", or a third-party source's name
        "why": resolution.reason,  # one sentence a person can read
    }
    if resolution.is_personal:
        shown["token"] = resolution.token_id  # the store's id: link to "edit my token"
        shown["scope"] = "all tenants" if resolution.scope == ALL_TENANTS else resolution.scope
        shown["matched_url"] = resolution.matched_url  # the tracker's own URL or its service URL
        shown["expires_at"] = resolution.expires_at
    if resolution.fallback_from:  # only under a fallback policy: why the personal token was skipped
        shown["warning"] = resolution.fallback_from
    return shown
# [end explain]


# [start errors]
from tokenproviders import (
    NoCredentialsError,
    PersonalTokenUnusableError,
    TokenProvidersError,
    TrackerUnavailableError,
)


def report_bug(resolver: Resolver, user: str, tenant: str, tracker_id: str, title: str, body: str) -> str:
    """The 1-click "Report bug" button."""
    tracker = resolver.tracker(tenant, tracker_id)
    try:
        issue = resolver.report_issue(user, tracker, title=title, body=body)
    except NotAuthorizedError:
        return "You are not a member of this tenant."  # nothing was looked at or sent
    except NoCredentialsError as exc:
        return f"Add a personal token first: {exc.hint}"
    except PersonalTokenUnusableError as exc:  # expired, undecryptable or rejected (401/403)
        return f"Your personal token cannot be used: {exc.message}. {exc.hint}."
    except TrackerUnavailableError as exc:
        return f"{tracker.name} is not answering; try again later ({exc.message})."
    except TokenProvidersError as exc:  # every other failure: one message with a hint
        return f"Not filed: {exc}"
    assert issue.resolution is not None
    return f"Filed {issue.url} as {issue.resolution.source}: {issue.resolution.reason}"
# [end errors]


def check() -> None:
    from _check import memory_plugins

    from tokenproviders import MemoryDirectory, Tracker

    bot = Credentials(api_username="bot", api_password=Secret("bot-token"))
    web = Tracker(tenant="acme", id="web", type="github", base_url="https://github.com/acme/web", bot_credentials=bot)
    api = Tracker(tenant="globex", id="api", type="github", base_url="https://github.com/globex/api")
    directory = MemoryDirectory(memberships=[("alice", "acme"), ("alice", "globex")], trackers=[web, api])
    plugins, types = memory_plugins("github")
    types["github"].backend.add_user("acme-bot", "bot-token", username="bot")
    types["github"].backend.add_user("alice", "ghp_alice")
    resolver = Resolver(directory, plugins=plugins)

    choices = token_form_choices(resolver, "alice")
    assert [c["url"] for c in choices] == ["https://github.com", "https://github.com/acme/web",
                                           "https://github.com/globex/api"]
    assert choices[0]["service_wide"] and choices[0]["tenants"] == ("acme", "globex")
    assert {f["name"] for f in choices[0]["fields"]} == {"api_username", "api_password"}

    assert "rejected" in save_token(resolver, "alice", {"url": "https://github.com", "scope": "all",
                                                         "api_password": "wrong"})
    assert resolver.tokens.list("alice") == []
    assert "Not saved" in save_token(resolver, "alice", {"url": "https://gitlab.com", "scope": "all",
                                                         "api_password": "x"})
    message = save_token(resolver, "alice", {"url": "https://github.com", "scope": "all",
                                             "api_password": "ghp_alice", "label": "laptop"})
    assert message.endswith("knows you as alice."), message

    assert check_my_access(resolver, "alice", "globex", "api") == "api will record alice (personal credentials)."
    shown = explain(resolver.resolve("alice", web))
    assert shown["source"] == "personal" and shown["scope"] == "all tenants"
    assert shown["matched_url"] == "https://github.com"
    assert "ghp_alice" not in repr(shown)

    filed = report_bug(resolver, "alice", "acme", "web", "Crash", "Steps")
    assert filed.startswith("Filed https://github.com/acme/web/issues/1 as personal"), filed
    assert types["github"].backend.issues["1"].reporter == "alice"
    assert report_bug(resolver, "bob", "acme", "web", "Crash", "") == "You are not a member of this tenant."
    resolver.tokens.delete("alice", "https://github.com", ALL_TENANTS)
    assert report_bug(resolver, "alice", "globex", "api", "Crash", "").startswith("Add a personal token first")


if __name__ == "__main__":
    check()
    print("host_tokens: ok")
