"""The OpenAI-compatible door's own wire layer: Chat Completions requests in, OpenAI-shaped
responses out (docs/openai.md).

:mod:`gateway.openai.wire` turns a request body into a validated, Converse-shaped
:class:`~gateway.openai.wire.ChatCompletionRequest`; :mod:`gateway.openai.responses` builds the
bodies, server-sent events and error envelopes the official ``openai`` SDKs parse. Neither module
runs a turn: the HTTP handler hands the parsed request to the turn core and renders what the core
reports with the builders here.
"""
