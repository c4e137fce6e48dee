"""The reference design's relay: every model stream event published on its own new connection.

DESIGN §10 describes the baseline this project is measured against: each of the 516 events of a
512-token Bedrock stream is published as it arrives, one HTTP request per event, each over a new
HTTPS connection, SigV4-signed. This module does exactly that so the benchmark can count and time
it on the same machine, against the same endpoint, as the gateway's relay.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


class ReferenceRelay:
    """Publishes one event per HTTP request, opening a new connection for each."""

    def __init__(self, endpoint: str, region: str = "us-east-1") -> None:
        self.endpoint = endpoint
        self.region = region
        self._credentials = botocore.session.get_session().get_credentials()
        self.events_published = 0
        self.publish_requests = 0
        self.connections_opened = 0

    def publish(self, channel: str, event: Any) -> None:
        body = json.dumps({"channel": channel, "events": [json.dumps(event)]})
        request = AWSRequest(
            method="POST",
            url=self.endpoint,
            data=body,
            headers={"content-type": "application/json"},
        )
        SigV4Auth(self._credentials, "appsync", self.region).add_auth(request)
        url = urllib.parse.urlparse(self.endpoint)
        conn_class = (
            http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_class(url.hostname or "", url.port, timeout=10)
        self.connections_opened += 1
        try:
            conn.request("POST", url.path, body=body.encode(), headers=dict(request.headers))
            response = conn.getresponse()
            response.read()
            self.publish_requests += 1
            if response.status >= 300:
                raise RuntimeError(f"publish failed with HTTP {response.status}")
            self.events_published += 1
        finally:
            conn.close()
