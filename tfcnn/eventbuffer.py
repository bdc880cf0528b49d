"""An in-memory list of progress events that producers append to and a consumer empties.

The sweep's Ray engine runs one as a Ray actor: its tasks report their events to it and the
sweep process collects them. It lives apart from :mod:`tfcnn.sweep` and imports nothing, so
the actor's worker starts without importing torch and takes events from the first task on.
"""

from __future__ import annotations


class EventBuffer:
    """Events (dicts) in arrival order until :meth:`take` hands them over."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def put(self, event: dict) -> None:
        """Append one event."""
        self.events.append(event)

    def take(self) -> list[dict]:
        """The events since the last call, oldest first."""
        events, self.events = self.events, []
        return events
