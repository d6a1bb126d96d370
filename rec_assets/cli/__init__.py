"""The command line: `make run`, `make backfill`, `make ui`, reports and the audit trail."""
