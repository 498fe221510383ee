"""A small client for a running service's admin API, used by the online CLI commands."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from stream.errors import AdminError


class AdminClient:
    """GET and POST JSON to the admin API with a bearer token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 70.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def post(self, path: str, body: dict | None = None) -> dict:
        return self._call("POST", path, body or {})

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            raise AdminError(f"{method} {self.url}{path}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise AdminError(f"{method} {self.url}{path}: cannot reach the service: {exc.reason}") from None
