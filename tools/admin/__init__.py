"""The operator's command line (``python -m tools.admin``): users, tiers, blocks and usage of a
deployed stack (its outputs) or of ``make dev`` (``--local``). See ``docs/admin.md``."""
