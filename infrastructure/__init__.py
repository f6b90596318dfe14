"""Adapters around the domain: settings, holiday data, catalog files, persistence helpers, CLI."""
