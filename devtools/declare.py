"""Declare one stack of the real Pulumi program under mocks, with no CLI and no AWS account.

Tests of the program and of the policy pack use this to see exactly what ``pulumi up`` would ask
the engine to create for a stack file, with every resource's inputs as the engine (and a policy
pack) sees them.

Interface::

    from devtools.declare import declare_stack, load_stack_config

    config = load_stack_config("prod")      # {"aws:region": ..., "ai-gateway:tiers": {...}, ...}
    stack = declare_stack("prod")           # runs __main__.py under pulumi.runtime.set_mocks
    stack = declare_stack("dev", {"ai-gateway:tiers.pro.dailyOutputTokens": 500000})

    stack.resources          # tuple[DeclaredResource, ...] in registration order
    stack.outputs            # stack outputs, resolved: {"region": "us-east-1", ...}
    stack.config             # the config the program ran with (fully qualified keys)
    stack.of_type("aws:dynamodb/table:Table")   # every resource of one type token
    stack.one("aws:dynamodb/table:Table")       # exactly one, or AssertionError
    stack.named("ai-gateway-dev-usage")          # by logical name

    DeclaredResource(type, name, urn, inputs, outputs, parent, provider, custom, dependencies, id)
      type      type token, e.g. "aws:dynamodb/table:Table" (components: "ai-gateway:index:Noun")
      inputs    camelCase property names, secrets unwrapped (what a policy's ``args.props`` holds)
      outputs   what the mocks answered: inputs plus computed ``id``-like values (``arn``, an
                emulated autoname, ``tagsAll`` = provider default tags | resource tags, ...)
      parent    URN of the parent resource (the stack for top-level components)
      provider  URN of the explicit provider the resource uses, or None
      dependencies  URNs it depends on (explicit depends_on and the sources of its inputs)
    stack.invokes            # ((token, args), ...) provider functions the program called

``overrides`` maps config keys to values applied over the stack file: keys are qualified
(``ai-gateway:waf``) or bare (``waf``, meaning ``ai-gateway:waf``); a dotted key sets a nested
value like ``pulumi config set --path`` does; a value of ``None`` removes the key. Config values
reach the program as the engine passes them: strings as-is, everything else JSON-encoded.

A config the program rejects raises the program's own ``settings.SettingsError``, so tests can
assert on its message. Declarations are cached per (stack, overrides) for the process; treat the
returned objects as read-only. Each declaration runs in a fresh thread, so the Pulumi runtime's
context-local state (root stack, config, monitor) never leaks from one declaration to the next.

From a shell (prints JSON; exit status 2 and ``{"error": ...}`` for a rejected config)::

    python -m devtools.declare --stack dev --overrides '{"ai-gateway:waf": true}'
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import importlib
import json
import runpy
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc as pulumi_rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"
PROJECT = "ai-gateway"

#: The account the mocks pretend to deploy into.
ACCOUNT_ID = "123456789012"
#: The account AWS publishes the managed Powertools layers from.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_PARAMETER_PREFIX = "/aws/service/powertools/"


@dataclass(frozen=True)
class DeclaredResource:
    """One resource the program registered, as the engine would have received it."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str | None
    provider: str | None
    custom: bool = True
    #: URNs of the resources this one explicitly depends on (``depends_on`` and input sources).
    dependencies: tuple[str, ...] = ()
    #: The physical id the mocks answered (a table's name, a user pool's id, ...).
    id: str | None = None


@dataclass(frozen=True)
class DeclaredStack:
    """Everything one run of the program declared."""

    stack: str
    resources: tuple[DeclaredResource, ...]
    outputs: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    #: Provider functions the program called: (token, args), e.g. the Powertools layer lookup.
    invokes: tuple[tuple[str, dict[str, Any]], ...] = ()

    def of_type(self, type_: str) -> list[DeclaredResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> DeclaredResource:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> DeclaredResource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> DeclaredResource:
        return next(r for r in self.resources if r.urn == urn)

    def children_of(self, urn: str) -> list[DeclaredResource]:
        return [r for r in self.resources if r.parent == urn]


# --- config ---------------------------------------------------------------------------------


def _qualify(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def load_stack_config(stack: str) -> dict[str, Any]:
    """The stack file's ``config:`` over the project's schema defaults, keys fully qualified."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config: dict[str, Any] = {
        _qualify(key): copy.deepcopy(spec["default"])
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise FileNotFoundError(f"no stack file {stack_file.name}")
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        config[_qualify(key)] = value
    return config


def apply_overrides(config: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` with ``overrides`` applied (see the module docstring); ``config`` is unchanged."""
    result = copy.deepcopy(config)
    for raw_key, value in (overrides or {}).items():
        namespace, _, path = _qualify(raw_key).partition(":")
        head, *rest = path.split(".")
        key = f"{namespace}:{head}"
        if not rest:
            if value is None:
                result.pop(key, None)
            else:
                result[key] = copy.deepcopy(value)
            continue
        node = result.setdefault(key, {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(rest[-1], None)
        else:
            node[rest[-1]] = copy.deepcopy(value)
    return result


def _engine_encoding(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the engine hands it to a Python program: strings raw, the rest as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


# --- mocks ----------------------------------------------------------------------------------


@functools.cache
def _properties_of(type_: str) -> frozenset[str]:
    """Snake-case property names of the pulumi_aws class behind a type token (empty if none)."""
    package, _, rest = type_.partition(":")
    module, _, class_name = rest.partition(":")
    if package != "aws" or not class_name:
        return frozenset()
    module = module.split("/")[0]
    for candidate in (f"pulumi_aws.{module}", f"pulumi_aws.{module}_"):
        try:
            cls = getattr(importlib.import_module(candidate), class_name)
        except (ImportError, AttributeError):
            continue
        return frozenset(
            n for klass in cls.__mro__ for n, v in vars(klass).items() if isinstance(v, property)
        )
    return frozenset()


def _unwrap_secrets(value: Any) -> Any:
    """``value`` with every secret replaced by its plain value (as a policy pack reads it)."""
    if isinstance(value, dict):
        sig = value.get(pulumi_rpc._special_sig_key)
        if sig == pulumi_rpc._special_secret_sig and "value" in value:
            return _unwrap_secrets(value["value"])
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def _suffix(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:7]


class GatewayMocks(pulumi_mocks.Mocks):
    """Answers resource registrations and invokes the way the AWS provider would, deterministically.

    Determinism matters: two declarations that differ only in config must produce identical
    values everywhere the config does not reach, so tests can diff them.
    """

    def __init__(self, region: str) -> None:
        self.region = region
        self.default_tags: dict[str, dict[str, str]] = {}  # provider id -> default tags
        self.invokes: list[tuple[str, dict[str, Any]]] = []
        self._local = threading.local()

    # Registrations run on executor threads; the monitor reads back the inputs it triggered.
    def take_inputs(self) -> dict[str, Any]:
        return getattr(self._local, "inputs", {})

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        args.inputs = _unwrap_secrets(args.inputs)
        self._local.inputs = args.inputs
        if args.typ.startswith("pulumi:providers:"):
            return self._provider(args)
        state = dict(args.inputs)
        props = _properties_of(args.typ)
        if "name" in props and "name" not in state:
            # The provider autonames resources: logical name plus a random suffix.
            state["name"] = f"{args.name}-{_suffix(args.name)}"
        if args.typ == "aws:s3/bucket:Bucket" and "bucket" not in state:
            state["bucket"] = f"{args.name}-{_suffix(args.name)}"
        if args.typ == "aws:cloudwatch/dashboard:Dashboard":
            state["dashboardArn"] = (
                f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{state.get('dashboardName')}"
            )
        resource_id = self._physical_id(args.typ, args.name, state)
        state.update(self._computed(args.typ, resource_id, state))
        if "arn" in props and "arn" not in state:
            state["arn"] = self._arn(args.typ, resource_id, state)
        if "tags_all" in props:
            # The AWS provider computes tagsAll = provider default tags | resource tags; emulate it
            # so tests and the policy pack can check the tags a resource really gets.
            provider_id = (args.provider or "").rpartition("::")[2]
            state["tagsAll"] = {
                **self.default_tags.get(provider_id, {}),
                **(state.get("tags") or {}),
            }
        return resource_id, state

    def _provider(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        resource_id = f"{args.name}-provider-id"
        default_tags = args.inputs.get("defaultTags") or {}
        if isinstance(default_tags, str):  # providers receive object config JSON-encoded
            default_tags = json.loads(default_tags)
        self.default_tags[resource_id] = dict(default_tags.get("tags") or {})
        return resource_id, dict(args.inputs)

    def _physical_id(self, typ: str, logical: str, state: dict[str, Any]) -> str:
        if typ == "aws:cognito/userPool:UserPool":
            return f"{self.region}_{_suffix(logical)}"
        if typ == "aws:appsync/api:Api":
            return _suffix(logical) * 3
        if typ == "aws:s3/bucket:Bucket":
            return state["bucket"]
        if typ == "aws:cloudwatch/dashboard:Dashboard":
            return str(state.get("dashboardName"))
        if typ == "aws:cloudfront/distribution:Distribution":
            return f"E{_suffix(logical).upper()}MOCK"
        return str(state.get("name") or f"{logical}-id")

    def _computed(self, typ: str, resource_id: str, state: dict[str, Any]) -> dict[str, Any]:
        region, account = self.region, ACCOUNT_ID
        if typ == "aws:appsync/api:Api":
            return {
                "apiId": resource_id,
                "apiArn": f"arn:aws:appsync:{region}:{account}:apis/{resource_id}",
                "dns": {
                    "HTTP": f"{resource_id}.appsync-api.{region}.amazonaws.com",
                    "REALTIME": f"{resource_id}.appsync-realtime-api.{region}.amazonaws.com",
                },
            }
        if typ == "aws:appsync/channelNamespace:ChannelNamespace":
            return {
                "channelNamespaceArn": f"arn:aws:appsync:{region}:{account}:apis/"
                f"{state.get('apiId')}/channelNamespace/{state.get('name')}"
            }
        if typ == "aws:cognito/userPool:UserPool":
            return {"endpoint": f"cognito-idp.{region}.amazonaws.com/{resource_id}"}
        if typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{region}:{account}:function:{resource_id}"
            # A function that publishes gets version 1 on create; otherwise only $LATEST exists.
            version = "1" if state.get("publish") else "$LATEST"
            return {
                "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
                f"{arn}/invocations",
                "qualifiedArn": f"{arn}:{version}",
                "version": version,
            }
        if typ == "aws:lambda/alias:Alias":
            arn = (
                f"arn:aws:lambda:{region}:{account}:function:{state.get('functionName')}"
                f":{state.get('name')}"
            )
            return {
                "arn": arn,
                "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
                f"{arn}/invocations",
            }
        if typ == "aws:s3/bucket:Bucket":
            return {"bucketRegionalDomainName": f"{resource_id}.s3.{region}.amazonaws.com"}
        if typ == "aws:kms/key:Key":
            return {"keyId": resource_id}
        if typ == "aws:cloudfront/distribution:Distribution":
            # CloudFront is global: its ARNs carry no region.
            return {
                "domainName": f"d{_suffix(resource_id)}.cloudfront.net",
                "hostedZoneId": "Z2FDTNDATAQYW2",
                "arn": f"arn:aws:cloudfront::{account}:distribution/{resource_id}",
            }
        if typ == "aws:cloudfront/function:Function":
            return {"arn": f"arn:aws:cloudfront::{account}:function/{resource_id}"}
        # pulumi-aws v7 resources may name their own region; their ARNs carry it.
        own_region = state.get("region") or region
        if typ == "aws:cloudwatch/logDeliverySource:LogDeliverySource":
            return {"arn": f"arn:aws:logs:{own_region}:{account}:delivery-source:{resource_id}"}
        if typ == "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination":
            return {
                "arn": f"arn:aws:logs:{own_region}:{account}:delivery-destination:{resource_id}"
            }
        return {}

    def _arn(self, typ: str, resource_id: str, state: dict[str, Any]) -> str:
        region, account = self.region, ACCOUNT_ID
        name = str(state.get("name") or resource_id)
        templates = {
            "aws:iam/role:Role": f"arn:aws:iam::{account}:role/{name}",
            "aws:iam/policy:Policy": f"arn:aws:iam::{account}:policy/{name}",
            "aws:dynamodb/table:Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "aws:ssm/parameter:Parameter": f"arn:aws:ssm:{region}:{account}:parameter"
            + (name if name.startswith("/") else f"/{name}"),
            "aws:lambda/function:Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{name}",
            "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": (
                f"arn:aws:firehose:{region}:{account}:deliverystream/{name}"
            ),
            "aws:s3/bucket:Bucket": f"arn:aws:s3:::{resource_id}",
            "aws:sns/topic:Topic": f"arn:aws:sns:{region}:{account}:{name}",
            "aws:kms/key:Key": f"arn:aws:kms:{region}:{account}:key/{resource_id}",
            "aws:cognito/userPool:UserPool": (
                f"arn:aws:cognito-idp:{region}:{account}:userpool/{resource_id}"
            ),
            "aws:wafv2/webAcl:WebAcl": (
                f"arn:aws:wafv2:{region}:{account}:regional/webacl/{name}/{_suffix(name)}"
            ),
            "aws:glue/catalogDatabase:CatalogDatabase": (
                f"arn:aws:glue:{region}:{account}:database/{name}"
            ),
            "aws:glue/catalogTable:CatalogTable": (
                f"arn:aws:glue:{region}:{account}:table/{state.get('databaseName')}/{name}"
            ),
            "aws:athena/workgroup:Workgroup": f"arn:aws:athena:{region}:{account}:workgroup/{name}",
            "aws:cloudwatch/metricAlarm:MetricAlarm": (
                f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"
            ),
        }
        if typ in templates:
            return templates[typ]
        service = typ.split(":")[1].split("/")[0]
        kind = typ.rpartition(":")[2].lower()
        return f"arn:aws:{service}:{region}:{account}:{kind}/{name}"

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict:  # type: ignore[override]
        self.invokes.append((args.token, dict(args.args)))
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock",
                "userId": "AIDAMOCK",
                "id": ACCOUNT_ID,
            }
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if args.token == "aws:ssm/getParameter:getParameter":
            name = args.args.get("name", "")
            if not name.startswith(POWERTOOLS_PARAMETER_PREFIX):
                raise ValueError(f"the mocks know no SSM parameter {name!r}")
            # /aws/service/powertools/python/arm64/python3.13/<version> -> the managed layer's ARN
            _, arch, python, version = name.removeprefix(POWERTOOLS_PARAMETER_PREFIX).split("/")
            layer = (
                f"arn:aws:lambda:{self.region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
                f"AWSLambdaPowertoolsPythonV3-{python.replace('.', '')}-{arch}:"
                f"{int(version.replace('.', '')) % 97}"
            )
            return {
                "arn": f"arn:aws:ssm:{self.region}::parameter{name}",
                "id": name,
                "name": name,
                "type": "String",
                "value": layer,
                "insecureValue": layer,
                "version": 1,
                "withDecryption": True,
            }
        raise NotImplementedError(f"the mocks do not answer {args.token}")


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The stock mock monitor, also keeping each registration's parent, provider and inputs."""

    def __init__(self, mocks: GatewayMocks) -> None:
        super().__init__(mocks)
        self.gateway_mocks = mocks
        self.declared: list[DeclaredResource] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        registration = self.resources[response.urn]
        record = DeclaredResource(
            type=request.type,
            name=request.name,
            urn=response.urn,
            inputs=self.gateway_mocks.take_inputs(),
            outputs=dict(registration.state),
            parent=request.parent or None,
            provider=request.provider.rpartition("::")[0] if request.provider else None,
            custom=bool(request.custom),
            dependencies=tuple(request.dependencies),
            id=registration.id or None,
        )
        with self._lock:
            self.declared.append(record)
        return response


# --- running the program ----------------------------------------------------------------------


def _run_program(stack: str, config: dict[str, Any]) -> DeclaredStack:
    region = str(config.get("aws:region", "us-east-1"))
    mocks = GatewayMocks(region)
    monitor = _RecordingMonitor(mocks)
    set_all_config(_engine_encoding(config))
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    async def program() -> None:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        root = get_root_resource()
        for key, value in dict(getattr(root, "outputs", {})).items():
            outputs[key] = await pulumi.Output.from_input(value).future()

    _sync_await(run_pulumi_func(program))
    return DeclaredStack(
        stack=stack,
        resources=tuple(monitor.declared),
        outputs=outputs,
        config=config,
        invokes=tuple(mocks.invokes),
    )


def _in_fresh_thread(stack: str, config: dict[str, Any]) -> DeclaredStack:
    """Run the program on a new thread: a new asyncio loop and empty context variables."""
    result: dict[str, Any] = {}

    def target() -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            result["stack"] = _run_program(stack, config)
        except BaseException as err:  # noqa: BLE001 - re-raised on the caller's thread
            result["error"] = err
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    thread = threading.Thread(target=target, name=f"declare-{stack}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["stack"]


@functools.lru_cache(maxsize=64)
def _declare_cached(stack: str, overrides_json: str, stack_file: str) -> DeclaredStack:
    config = apply_overrides(load_stack_config(stack_file), json.loads(overrides_json))
    return _in_fresh_thread(stack, config)


def declare_stack(
    stack: str, overrides: Mapping[str, Any] | None = None, *, config_of: str | None = None
) -> DeclaredStack:
    """Run ``__main__.py`` for ``stack`` (with ``overrides``) under mocks; see the module doc.

    ``config_of`` names another stack whose file to use, to declare a stack that has none
    (``declare_stack("customer-facing-prod-eu-west-1", config_of="prod")``)."""
    overrides_json = json.dumps(dict(overrides or {}), sort_keys=True)
    return _declare_cached(stack, overrides_json, config_of or stack)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--overrides", default="{}", help="JSON object of config overrides")
    args = parser.parse_args(argv)
    try:
        declared = declare_stack(args.stack, json.loads(args.overrides))
    except ValueError as err:  # SettingsError and friends: a config the program rejects
        print(json.dumps({"error": {"type": type(err).__name__, "message": str(err)}}))
        return 2
    print(json.dumps(asdict(declared), indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
