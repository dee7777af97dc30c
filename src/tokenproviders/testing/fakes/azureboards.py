"""A fake Azure DevOps (Azure Boards) REST API, organization-scoped like ``dev.azure.com/{org}``."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import Any

from ._server import (
    ANONYMOUS,
    AuthResult,
    FakeIssue,
    FakeTracker,
    FakeUser,
    RecordedRequest,
    Response,
    basic_credentials,
    json_response,
    segment,
    utc_timestamp,
)

__all__ = ["FakeAzureBoards"]

_I = re.IGNORECASE
_CONNECTION_DATA = re.compile(r"/(?P<org>[^/_][^/]*)/_apis/connectionData/?", _I)
_CREATE = re.compile(r"/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/wit/workitems/(?P<type>(?:\$|%24)[^/]+)", _I)
_WORK_ITEM = re.compile(r"/(?P<org>[^/]+)(?:/(?P<project>[^/_][^/]*))?/_apis/wit/workitems/(?P<id>[0-9]+)/?", _I)
_COMMENTS = re.compile(r"/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/wit/workitems/(?P<id>[0-9]+)/comments/?", _I)
_PATCH_CONTENT_TYPE = "application/json-patch+json"

_SIGN_IN_PAGE = b"""<!DOCTYPE html>
<html><head><title>Azure DevOps Services | Sign In</title></head>
<body><p>Sign in to your account</p>
<form method="post" action="https://login.microsoftonline.com/common/oauth2/authorize"></form>
</body></html>
"""


class FakeAzureBoards(FakeTracker):
    """A fake Azure DevOps organization host (``{url}/{org}/...``) serving Azure Boards work items.

    Routes: ``GET /{org}/_apis/connectionData`` (``authenticatedUser`` with ``id``,
    ``providerDisplayName`` and ``properties.Account.$value``), ``POST
    /{org}/{project}/_apis/wit/workitems/${type}?api-version=...`` with a JSON-Patch body
    (``Content-Type: application/json-patch+json``; ``/fields/System.Title``, ``System.Description``,
    ``System.Tags`` ...), ``GET /{org}[/{project}]/_apis/wit/workitems/{id}``, ``POST``/``GET
    /{org}/{project}/_apis/wit/workItems/{id}/comments?api-version=7.x-preview.N``.  Route literals
    match case-insensitively, as in Azure DevOps; ``$Bug`` stays raw in ``raw_path``.

    Like Azure DevOps, ``_apis`` calls other than ``connectionData`` need an ``api-version`` (query
    or ``Accept`` header), the comments API needs a ``-preview`` version, and work-item creation
    needs the JSON-Patch content type (415 otherwise).

    Credentials: ``add_user(login, token=pat)`` accepts ``Authorization: Basic base64(<any user
    name>:<pat>)``.  Missing or wrong credentials get 401 — or, with
    ``signin_page_for_unauthenticated=True``, **203** with an HTML sign-in page, the trap the real
    service sets for clients that do not check the status.  :attr:`issues` is keyed by
    ``str(work item id)``; :attr:`FakeIssue.project` is ``"{org}/{project}"``.
    """

    type_name = "azureboards"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        signin_page_for_unauthenticated: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.signin_page_for_unauthenticated = signin_page_for_unauthenticated

    # ------------------------------------------------------------------ auth

    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        if request.header("Authorization") is None:
            return ANONYMOUS
        basic = basic_credentials(request)
        if basic is None:
            return AuthResult(presented=True)
        return AuthResult(presented=True, user=self._user_by_token(basic[1]))

    # ------------------------------------------------------------------ shapes

    def _error_response(self, status: int, message: str) -> Response:
        return self._vss_error(status, message, "VssServiceException")

    @staticmethod
    def _vss_error(status: int, message: str, type_key: str) -> Response:
        return json_response(
            status,
            {
                "$id": "1",
                "innerException": None,
                "message": message,
                "typeName": f"Microsoft.VisualStudio.Services.WebApi.{type_key}, "
                "Microsoft.VisualStudio.Services.WebApi",
                "typeKey": type_key,
                "errorCode": 0,
                "eventId": 3000,
            },
        )

    @staticmethod
    def user_id(login: str) -> str:
        """The stable identity id (a UUID) the fake reports for ``login``."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-azure-devops:{login}"))

    def _identity_ref(self, login: str, org: str) -> dict[str, Any]:
        user = self.users.get(login)
        user_id = self.user_id(login)
        return {
            "displayName": user.display_name if user else login,
            "url": f"{self.url}/{org}/_apis/Identities/{user_id}",
            "id": user_id,
            "uniqueName": user.mail if user else login,
            "imageUrl": f"{self.url}/{org}/_apis/GraphProfile/MemberAvatars/aad.{user_id}",
            "descriptor": f"aad.{user_id}",
        }

    def _connection_data(self, user: FakeUser) -> dict[str, Any]:
        user_id = self.user_id(user.login)
        identity = {
            "id": user_id,
            "descriptor": f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{user.mail}",
            "subjectDescriptor": f"aad.{user_id}",
            "providerDisplayName": user.display_name,
            "isActive": True,
            "properties": {"Account": {"$type": "System.String", "$value": user.mail}},
            "resourceVersion": 2,
            "metaTypeId": 0,
        }
        instance = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-azure-devops-instance:{self.url}"))
        return {
            "authenticatedUser": identity,
            "authorizedUser": identity,
            "instanceId": instance,
            "deploymentId": instance,
            "deploymentType": "hosted",
            "locationServiceData": {
                "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                "defaultAccessMappingMoniker": "PublicAccessMapping",
                "lastChangeId": 1,
                "lastChangeId64": 1,
            },
        }

    def _work_item_json(self, issue: FakeIssue) -> dict[str, Any]:
        org, _, project = issue.project.partition("/")
        api = f"{self.url}/{org}/{urllib.parse.quote(project)}/_apis/wit/workItems/{issue.id}"
        payload_fields = self._fields_from_patch(issue.payload)
        fields: dict[str, Any] = dict(payload_fields)
        fields.update(
            {
                "System.AreaPath": project,
                "System.TeamProject": project,
                "System.IterationPath": project,
                "System.WorkItemType": issue.issue_type,
                "System.State": "New",
                "System.Reason": "New",
                "System.Title": issue.title,
                "System.CreatedBy": self._identity_ref(issue.reporter, org),
                "System.ChangedBy": self._identity_ref(issue.reporter, org),
                "System.CreatedDate": utc_timestamp(),
                "System.ChangedDate": utc_timestamp(),
                "System.CommentCount": len(issue.comments),
            }
        )
        if issue.body:
            fields["System.Description"] = issue.body
        if issue.labels:
            fields["System.Tags"] = "; ".join(issue.labels)
        return {
            "id": int(issue.id),
            "rev": 1 + len(issue.comments),
            "fields": fields,
            "_links": {
                "self": {"href": api},
                "workItemUpdates": {"href": f"{api}/updates"},
                "workItemComments": {"href": f"{api}/comments"},
                "html": {"href": issue.url},
                "workItemType": {"href": f"{self.url}/{org}/_apis/wit/workItemTypes/{issue.issue_type}"},
            },
            "url": api,
        }

    def _comment_json(self, issue: FakeIssue, comment_id: str, author: str, text: str) -> dict[str, Any]:
        org, _, project = issue.project.partition("/")
        return {
            "workItemId": int(issue.id),
            "id": int(comment_id),
            "version": 1,
            "text": text,
            "createdBy": self._identity_ref(author, org),
            "createdDate": utc_timestamp(),
            "modifiedBy": self._identity_ref(author, org),
            "modifiedDate": utc_timestamp(),
            "url": f"{self.url}/{org}/{urllib.parse.quote(project)}/_apis/wit/workItems/{issue.id}"
            f"/comments/{comment_id}",
        }

    # ------------------------------------------------------------------ routes

    def _api_version(self, request: RecordedRequest) -> str | None:
        version = request.query_param("api-version")
        if version:
            return version
        accept = request.header("Accept") or ""
        match = re.search(r"api-version=([^;,\s]+)", accept)
        return match.group(1) if match else None

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        path = request.raw_path
        user = auth.user
        if user is None:
            if self.signin_page_for_unauthenticated:
                return Response(status=203, body=_SIGN_IN_PAGE, content_type="text/html; charset=utf-8")
            response = self._vss_error(
                401,
                "TF400813: The user '' is not authorized to access this resource.",
                "UnauthorizedRequestException",
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="https://dev.azure.com/"'
            response.headers["X-TFS-FedAuthRedirect"] = "https://spsprodweu5.vssps.visualstudio.com/_signin"
            return response

        if _CONNECTION_DATA.fullmatch(path):
            if request.method != "GET":
                return self._not_found(path)
            return json_response(200, self._connection_data(user))

        version = self._api_version(request)
        matched = _COMMENTS.fullmatch(path) or _CREATE.fullmatch(path) or _WORK_ITEM.fullmatch(path)
        if matched and version is None:
            return self._vss_error(
                400,
                f"No api-version was supplied for the {request.method} request. The version must be "
                'supplied either as part of the Accept header (e.g. "application/json; '
                "api-version=1.0\") or as a query parameter (e.g. '?api-version=1.0').",
                "VssVersionNotSpecifiedException",
            )

        if match := _COMMENTS.fullmatch(path):
            assert version is not None
            if "-preview" not in version.lower():
                base = version.split("-", 1)[0]
                return self._vss_error(
                    400,
                    f'The requested version "{version}" of the resource is under preview. The -preview '
                    "flag must be supplied in the api-version for such requests. For example: "
                    f'"{base}-preview"',
                    "VssInvalidPreviewVersionException",
                )
            issue = self._find(match)
            if issue is None:
                return self._no_work_item(match["id"])
            if request.method == "GET":
                comments = [self._comment_json(issue, c.id, c.author, c.text) for c in issue.comments]
                return json_response(200, {"totalCount": len(comments), "count": len(comments), "comments": comments})
            if request.method != "POST":
                return self._not_found(path)
            try:
                data = request.json()
            except ValueError:
                data = None
            text = data.get("text") if isinstance(data, dict) else None
            if not isinstance(text, str) or not text.strip():
                return self._vss_error(
                    400, "Value cannot be null.\r\nParameter name: request.Text", "ArgumentNullException"
                )
            comment = self._add_comment(issue, user.login, text)
            return json_response(200, self._comment_json(issue, comment.id, user.login, text))

        if match := _CREATE.fullmatch(path):
            if request.method not in ("POST", "PATCH"):
                return self._not_found(path)
            return self._create(request, user, match)

        if match := _WORK_ITEM.fullmatch(path):
            issue = self._find(match)
            if issue is None:
                return self._no_work_item(match["id"])
            if request.method != "GET":
                return self._not_found(path)
            return json_response(200, self._work_item_json(issue))

        return self._not_found(path)

    def _not_found(self, path: str) -> Response:
        return self._vss_error(
            404,
            f"The controller for path '{path}' was not found or does not implement IController.",
            "HttpException",
        )

    def _no_work_item(self, raw_id: str) -> Response:
        return self._vss_error(
            404,
            f"TF401232: Work item {raw_id} does not exist, or you do not have permissions to read it.",
            "WorkItemUnauthorizedAccessException",
        )

    def _find(self, match: re.Match[str]) -> FakeIssue | None:
        issue = self._get_issue(match["id"])
        if issue is None:
            return None
        org, _, project = issue.project.partition("/")
        if segment(match["org"]).lower() != org.lower():
            return None
        wanted_project = match.groupdict().get("project")
        if wanted_project is not None and segment(wanted_project).lower() != project.lower():
            return None
        return issue

    @staticmethod
    def _fields_from_patch(patch: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if not isinstance(patch, list):
            return fields
        for op in patch:
            if not isinstance(op, dict):
                continue
            path = op.get("path")
            if isinstance(path, str) and path.startswith("/fields/") and op.get("op") in ("add", "replace"):
                fields[path[len("/fields/") :]] = op.get("value")
        return fields

    def _create(self, request: RecordedRequest, user: FakeUser, match: re.Match[str]) -> Response:
        content_type = (request.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        if content_type != _PATCH_CONTENT_TYPE:
            return self._vss_error(
                415,
                f'The request indicated a Content-Type of "{content_type}" for method type '
                f'"{request.method}" which is not supported. Valid content types for this method '
                f"are: {_PATCH_CONTENT_TYPE}.",
                "VssRequestContentTypeNotSupportedException",
            )
        try:
            patch = request.json()
        except ValueError:
            patch = None
        if not isinstance(patch, list) or not all(isinstance(op, dict) and "op" in op and "path" in op for op in patch):
            return self._vss_error(
                400,
                "You must pass a valid patch document in the body of the request.",
                "VssPropertyValidationException",
            )
        fields = self._fields_from_patch(patch)
        title = fields.get("System.Title")
        if not isinstance(title, str) or not title.strip():
            return self._vss_error(
                400,
                "TF401320: Rule Error for field Title. Error code: Required, HasValues, "
                "LimitedToValues, AllowsOldValue, InvalidEmpty.",
                "RuleValidationException",
            )
        org = segment(match["org"])
        project = segment(match["project"])
        work_item_type = segment(match["type"])[1:]
        description = fields.get("System.Description")
        tags = fields.get("System.Tags")
        labels = [t.strip() for t in tags.split(";") if t.strip()] if isinstance(tags, str) else []
        item_id = str(self._next("issue"))
        issue = FakeIssue(
            id=item_id,
            key=item_id,
            title=title,
            body=description if isinstance(description, str) else "",
            reporter=user.login,
            project=f"{org}/{project}",
            labels=labels,
            issue_type=work_item_type,
            url=f"{self.url}/{org}/{urllib.parse.quote(project)}/_workitems/edit/{item_id}",
            payload=patch,
        )
        self._store_issue(item_id, issue)
        return json_response(200, self._work_item_json(issue))
