"""Every decision, written down before the client is answered."""

from authsvc.audit.record import SCHEMA_VERSION, DecisionFacts, Outcome, encode, to_record
from authsvc.audit.sink import AuditSink, FileSink

__all__ = [
    "SCHEMA_VERSION",
    "AuditSink",
    "DecisionFacts",
    "FileSink",
    "Outcome",
    "encode",
    "to_record",
]
