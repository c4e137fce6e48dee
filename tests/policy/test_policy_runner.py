"""The offline runner drives pulumi-policy's own analyzer, the way the CLI does over gRPC."""

from __future__ import annotations

from pack_fixtures import FUNCTION, function, resource, run
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.offline import load_analyzer


def test_the_runner_drives_the_servicer_the_pack_builds():
    analyzer = load_analyzer()
    assert isinstance(analyzer, analyzer_pb2_grpc.AnalyzerServicer)
    assert type(analyzer).__module__ == "pulumi_policy.policy"


def test_each_load_builds_a_fresh_analyzer():
    # Configure keeps state in the servicer; one stack's config must not leak into the next.
    assert load_analyzer() is not load_analyzer()


def test_a_value_unknown_during_preview_gives_the_analyzers_advisory_notice():
    # GIVEN a function whose runtime is only known after deployment (as in a preview)
    subject = resource(FUNCTION, "chat", function(runtime=UNKNOWN_STRING_VALUE))
    # WHEN the pack runs
    found = run([subject]).of_policy("lambda-python-runtime")
    # THEN pulumi-policy reports it cannot judge yet, as an advisory, instead of a violation
    assert [v.enforcement_level for v in found] == ["advisory"]
    assert "during preview" in found[0].message


def test_resource_violations_are_reported_against_the_analyzed_resource():
    subject = resource(FUNCTION, "chat", function(architectures=["x86_64"]))
    found = run([subject]).of_policy("lambda-arm64")
    assert [(v.urn, v.resource_name, v.resource_type) for v in found] == [
        (subject.urn, "chat", FUNCTION)
    ]
