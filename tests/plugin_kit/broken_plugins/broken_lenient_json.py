"""Broken: reads answers with defaults, so a wrong URL that serves other JSON passes for YouTrack."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import Identity, IssueDraft, ReportedIssue, Tracker, hookimpl


class LenientYouTrackType(YouTrackType):
    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        me = client.call("GET", "/users/me", fields="id,login,fullName,email")
        return Identity(login=me.get("login", ""), name=me.get("fullName"))  # the mistake under test

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        payload = {"project": {"id": tracker.options["project"]}, "summary": draft.title, "description": draft.body}
        created = client.call("POST", "/issues", payload, fields="id,idReadable")
        readable = created.get("idReadable", "")  # the mistake under test
        return ReportedIssue(id=readable, url=f"{tracker.base_url.rstrip('/')}/issue/{readable}")


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(LenientYouTrackType())
