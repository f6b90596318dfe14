"""Pure domain model of the contract lifecycle: no I/O, no clock, no third-party code
except ``eventsourcing.domain``."""
