"""The event log and projection tables: append, read, verify (see eventstore.py)."""

from monitor.store.eventstore import EventStore
from monitor.store.records import (
    GENESIS,
    Appended,
    NewEvent,
    Projection,
    Recorded,
    VerifyReport,
    canonical_json,
    chain_hash,
)
from monitor.store.writer import Transaction

__all__ = [
    "GENESIS",
    "Appended",
    "EventStore",
    "NewEvent",
    "Projection",
    "Recorded",
    "Transaction",
    "VerifyReport",
    "canonical_json",
    "chain_hash",
]
