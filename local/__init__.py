"""The local runtime: the whole gateway on one machine, with no AWS account.

``python -m local`` (``make dev``) starts moto standing in for AWS, an AppSync-Events-compatible
server that runs the real handler code, and the web chat UI. See ``docs/local.md``.
"""
