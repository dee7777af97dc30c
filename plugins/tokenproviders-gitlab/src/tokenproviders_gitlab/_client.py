"""python-gitlab's client with its own waiting switched off.

Imported by :meth:`~tokenproviders_gitlab.GitLabTrackerType.build_client` only: importing this
module imports python-gitlab.
"""

from __future__ import annotations

from typing import Any

import gitlab

__all__ = ["BoundedGitlab"]


class BoundedGitlab(gitlab.Gitlab):
    """python-gitlab's client that never sleeps through a rate limit nor retries on its own.

    By default python-gitlab answers a 429 by sleeping for its ``Retry-After`` and trying again,
    up to ten times (and with ``retry_transient_errors`` it does the same for every 5xx and
    timeout, the POST that files an issue included). Here each request is made once; the HTTP
    adapter retries what is safe (a connection that was never made, a 502/503/504 to a GET).
    A caller that passes these arguments explicitly still gets what it asks for.
    """

    def http_request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("obey_rate_limit", False)
        kwargs.setdefault("retry_transient_errors", False)
        kwargs.setdefault("max_retries", 0)
        return super().http_request(*args, **kwargs)
