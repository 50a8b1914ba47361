"""Every decision, written down before the client is answered; tamper-evident and durable."""

from authsvc.audit.chain import GENESIS, ChainHead, canonical, record_hash
from authsvc.audit.checkpoint import CheckpointSigner, SignatureCheck
from authsvc.audit.log import AuditLog, AuditWriter, Rotation
from authsvc.audit.record import SCHEMA_VERSION, DecisionFacts, Outcome, iso, to_record
from authsvc.audit.sink import AuditSink, FileSink
from authsvc.audit.verify import Break, BreakKind, Report, verify

__all__ = [
    "GENESIS",
    "SCHEMA_VERSION",
    "AuditLog",
    "AuditSink",
    "AuditWriter",
    "Break",
    "BreakKind",
    "ChainHead",
    "CheckpointSigner",
    "DecisionFacts",
    "FileSink",
    "Outcome",
    "Report",
    "Rotation",
    "SignatureCheck",
    "canonical",
    "iso",
    "record_hash",
    "to_record",
    "verify",
]
