"""HTTP API (FastAPI) for billing systems, auditors and operators: ``api.app.create_app``."""
