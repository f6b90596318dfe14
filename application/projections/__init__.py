"""Read-model projections (spec 11): billing, outage credits, deadlines.

Pure application code: ``Projector`` turns a batch of (position, domain event) into the row
changes of every read table; a ``ReadStore`` (SQLite or PostgreSQL, in ``infrastructure``)
writes them together with the tracking position in one transaction.
"""
