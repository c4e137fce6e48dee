"""Bedrock model ids: foundation models and the cross-region inference profiles that route to
them (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html)."""

from __future__ import annotations

INFERENCE_PROFILE_PREFIXES = frozenset({"us", "eu", "apac", "global", "us-gov", "jp", "au", "ca"})


def is_inference_profile(model_id: str) -> bool:
    """True for cross-region inference-profile ids such as ``us.amazon.nova-pro-v1:0``."""
    prefix, _, rest = model_id.partition(".")
    return prefix in INFERENCE_PROFILE_PREFIXES and "." in rest


def foundation_model_of(model_id: str) -> str:
    """The foundation-model id an inference profile routes to (the id itself otherwise)."""
    return model_id.partition(".")[2] if is_inference_profile(model_id) else model_id
