"""Fake issue-tracker HTTP servers that the real client libraries accept.

Each fake is a small threaded HTTP/1.1 server on a loopback port, built on the standard library
only.  It records every request (:class:`RecordedRequest`), maps credentials to users registered with
:meth:`FakeTracker.add_user`, stores the issues and comments it is sent (with the login that sent
them) and can inject faults (:meth:`FakeTracker.fail_with`, :meth:`FakeTracker.delay`,
:meth:`FakeTracker.hang`)::

    with FakeGitHub() as gh:
        gh.add_user("alice", token="ghp_alice")
        ...  # point the code under test at gh.url (or f"{gh.url}/api/v3")
        assert gh.issues["1"].reporter == "alice"
"""

from ._server import FakeComment, FakeIssue, FakeTracker, FakeUser, RecordedRequest
from .azureboards import FakeAzureBoards
from .bugzilla import FakeBugzilla
from .github import FakeGitHub
from .gitlab import FakeGitLab
from .jira import FakeJira
from .redmine import FakeRedmine

#: Every fake, keyed by its ``type_name``.
FAKES: dict[str, type[FakeTracker]] = {
    cls.type_name: cls for cls in (FakeJira, FakeGitHub, FakeGitLab, FakeRedmine, FakeBugzilla, FakeAzureBoards)
}

__all__ = [
    "FAKES",
    "FakeAzureBoards",
    "FakeBugzilla",
    "FakeComment",
    "FakeGitHub",
    "FakeGitLab",
    "FakeIssue",
    "FakeJira",
    "FakeRedmine",
    "FakeTracker",
    "FakeUser",
    "RecordedRequest",
]
