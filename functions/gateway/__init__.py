"""ai-gateway's function code: the chat turn, channel authorisation and their data model.

The modules here hold no AWS clients at import time, so the Pulumi program, the local runtime
and the tests import the data model (tiers, table schemas, wire format) from the same place.
"""
