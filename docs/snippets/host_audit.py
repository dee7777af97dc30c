"""Audit guide: recording every action, naming who acts, and reading the trail."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def setup(data_dir: Path, plugins: Any) -> tuple[Any, Any]:
    # [start observer]
    from tokenproviders import Resolver
    from tokenproviders.crypto import KeyRing
    from tokenproviders.stores.sqlite import SQLiteDatabase

    db = SQLiteDatabase(data_dir / "tokens.db", KeyRing.load(default_key_file=data_dir / "keys.json"))
    resolver = Resolver(directory=db.directory, store=db.tokens, plugins=plugins)
    resolver.plugins.register(db.audit.observer())  # every action, refusals and failures included
    # [end observer]
    return db, resolver


def report_bug(resolver: Any, request: Any, tracker: Any, title: str) -> Any:
    # [start acting]
    from tokenproviders import acting

    # One web request is one user action: everything the resolver does inside the block
    # names who acts and carries the request's id, however often it is called.
    with acting(principal=request.user.username, correlation_id=request.id):
        return resolver.report_issue(request.user.username, tracker, title)
    # [end acting]


def read(db: Any, request_id: str) -> Any:
    # [start query]
    from datetime import datetime, timedelta, timezone

    since = datetime.now(timezone.utc) - timedelta(days=7)
    refused = db.audit.query(outcome="refused", since=since)  # who was turned away, and why
    changes = db.audit.query(action="tracker.change", since=since)  # where trackers now point
    one_click = db.audit.query(correlation_id=request_id)  # everything one request did
    for entry in one_click:
        print(entry.at, entry.action, entry.outcome, entry.user, entry.source, entry.principal, entry.detail)
    # [end query]
    return refused, changes, one_click


def observer() -> Any:
    # [start own-observer]
    from tokenproviders import AuditEvent, hookimpl

    class ForwardToSIEM:
        """Sends each event to the host's own log pipeline (it never holds a secret)."""

        def __init__(self, send: Any) -> None:
            self.send = send

        @hookimpl
        def tokenproviders_audit(self, event: AuditEvent) -> None:
            self.send({"at": event.at.isoformat(), "action": event.action, "outcome": event.outcome,
                       "user": event.user, "tracker": f"{event.tenant}/{event.tracker}",
                       "source": event.source, "by": event.principal, "request": event.correlation_id})
    # [end own-observer]
    return ForwardToSIEM


class _User:
    username = "alice"


class _Request:
    user = _User()
    id = "req-7f3a"


def check() -> None:
    from _check import memory_plugins

    from tokenproviders import Credentials, NotAuthorizedError, Secret, Tracker, acting
    from tokenproviders.crypto import KeyRing

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        KeyRing.generate_key_file(data_dir / "keys.json")
        plugins, types = memory_plugins("jira")
        types["jira"].backend.add_user("kiwi-bot", token="bot-token")
        db, resolver = setup(data_dir, plugins)
        sent: list[dict[str, Any]] = []
        resolver.plugins.register(observer()(sent.append))
        jira = Tracker(tenant="acme", id="jira", type="jira", base_url="https://acme.atlassian.example",
                       bot_credentials=Credentials(Secret("bot-token")))
        with acting(principal="admin"):
            db.directory.add_member("alice", "acme")
            db.directory.add_tracker(jira)
            db.directory.update_tracker(jira)
        report_bug(resolver, _Request(), jira, "Crash on save")
        try:
            resolver.resolve("mallory", jira)
        except NotAuthorizedError:
            pass
        refused, changes, one_click = read(db, "req-7f3a")
        assert [(e.action, e.user) for e in refused] == [("resolve", "mallory")]
        assert [(e.action, e.principal) for e in changes] == [("tracker.change", "admin")]
        assert [(e.action, e.outcome, e.principal) for e in one_click] == [("report", "ok", "alice")]
        assert [(s["action"], s["by"], s["request"]) for s in sent] == [
            ("report", "alice", "req-7f3a"),
            ("resolve", None, None),
        ]
        db.close()
        assert b"bot-token" not in (data_dir / "tokens.db").read_bytes()


if __name__ == "__main__":
    check()
    print("host_audit: ok")
