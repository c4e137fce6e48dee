"""Publishing to the Events HTTP endpoint: SigV4 for AppSync, retries, one pooled connection."""

from __future__ import annotations

import json

import pytest
from botocore.credentials import Credentials
from gateway.publisher import EventsHttpPublisher, publish_stats, region_of
from gateway.relay import PublishError

CREDENTIALS = Credentials("AKIDEXAMPLE", "secret", "session-token").get_frozen_credentials()


def publisher_for(endpoint, **options) -> EventsHttpPublisher:
    return EventsHttpPublisher(
        endpoint.url,
        region="eu-west-1",
        credentials=lambda: CREDENTIALS,
        base_delay=0.001,
        **options,
    )


def events(*texts: str) -> list[str]:
    return [json.dumps({"type": "delta", "text": t}) for t in texts]


def test_a_publish_is_a_sigv4_signed_post_of_the_channel_and_event_strings(endpoint):
    publisher_for(endpoint).publish("/replies/u1", events("a", "b"))
    (publish,) = endpoint.publishes
    assert publish.path == "/event"
    assert publish.channel == "/replies/u1"
    assert [e["text"] for e in publish.events] == ["a", "b"]
    authorization = publish.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/appsync/aws4_request" in authorization
    assert publish.headers["x-amz-security-token"] == "session-token"
    assert publish.headers["content-type"] == "application/json"


def test_the_region_comes_from_an_appsync_host_when_there_is_one():
    assert region_of("https://abc.appsync-api.ap-south-1.amazonaws.com/event", "x") == "ap-south-1"
    assert region_of("http://127.0.0.1:4010/event", "us-east-1") == "us-east-1"


def test_every_publish_reuses_one_kept_alive_connection(endpoint):
    publisher = publisher_for(endpoint)
    before = publish_stats()
    for i in range(20):
        publisher.publish("/replies/u1", events(str(i)))
    after = publish_stats()
    assert endpoint.connections == 1
    assert after.connections_opened - before.connections_opened == 1
    assert after.publish_requests - before.publish_requests == 20
    assert after.events_published - before.events_published == 20


def test_throttling_and_server_errors_are_retried(endpoint):
    endpoint.scripted_statuses = [429, 503, 500]
    before = publish_stats()
    publisher_for(endpoint).publish("/replies/u1", events("a"))
    assert [e["text"] for e in endpoint.events()] == ["a"]
    assert publish_stats().retries - before.retries == 3


def test_a_client_error_is_not_retried(endpoint):
    endpoint.scripted_statuses = [403, 200]
    with pytest.raises(PublishError):
        publisher_for(endpoint).publish("/replies/u1", events("a"))
    assert endpoint.scripted_statuses == [200]


def test_an_endpoint_that_keeps_failing_gives_up_after_the_attempts(endpoint):
    endpoint.scripted_statuses = [503] * 10
    with pytest.raises(PublishError):
        publisher_for(endpoint, max_attempts=3).publish("/replies/u1", events("a"))
    assert len(endpoint.scripted_statuses) == 7


def test_events_the_endpoint_lists_as_failed_are_sent_again(endpoint):
    endpoint.scripted_failures = [[1, 2]]
    publisher_for(endpoint).publish("/replies/u1", events("a", "b", "c"))
    assert [[e["text"] for e in p.events] for p in endpoint.publishes] == [["a"], ["b", "c"]]


def test_without_credentials_only_a_loopback_http_endpoint_is_published_to(endpoint):
    EventsHttpPublisher(endpoint.url, region="us-east-1", credentials=lambda: None).publish(
        "/replies/u1", events("a")
    )
    assert "authorization" not in endpoint.publishes[0].headers
    https = EventsHttpPublisher(
        "https://abc.appsync-api.us-east-1.amazonaws.com/event",
        region="us-east-1",
        credentials=lambda: None,
        max_attempts=1,
    )
    with pytest.raises(PublishError):
        https.publish("/replies/u1", events("a"))


def test_a_publish_that_gives_up_says_which_events_did_get_through(endpoint):
    # GIVEN an endpoint that accepts "a" and "c" but keeps refusing "b"
    endpoint.scripted_failures = [[1], [0], [0]]
    # WHEN the publisher gives up
    with pytest.raises(PublishError) as refused:
        publisher_for(endpoint, max_attempts=3).publish("/replies/u1", events("a", "b", "c"))
    # THEN the error names the delivered events by their index in the publish
    assert refused.value.delivered == (0, 2)
