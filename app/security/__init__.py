"""Secrets at rest and guards on outgoing requests."""
