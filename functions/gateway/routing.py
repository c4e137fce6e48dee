"""The one lock every Powertools AppSync Events resolver in a process routes under.

Powertools keeps the event being resolved on the ``Router`` class, not on the resolver instance
(aws-lambda-powertools 3.37, ``event_handler/events_appsync/appsync_events.py``, ``resolve``:
``Router.current_event = ...`` and ``Router.lambda_context = context``), so two resolvers in one
process share it. Lambda runs one
handler per process, but the local runtime runs the chat and subscribe handlers in many threads
of one process: routing (microseconds) is serialised across both, the turns themselves are not.
"""

from __future__ import annotations

import threading

ROUTING_LOCK = threading.Lock()
