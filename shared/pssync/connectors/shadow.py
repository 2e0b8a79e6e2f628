"""The shadow target: records the commands that would be sent to a PSA or ERP, sends nothing."""

from __future__ import annotations

from pssync.model.commands import ConnectorCommand
from pssync.ports import DeliveryLogPort, RecordedCommand


class ShadowConnector:
    """Records what would be sent, sends nothing: the local default and step one of any cutover."""

    def __init__(self, delivery_log: DeliveryLogPort) -> None:
        self._log = delivery_log

    def send(self, command: ConnectorCommand, recorded_at: str) -> RecordedCommand:
        return self._log.record(command, recorded_at)
