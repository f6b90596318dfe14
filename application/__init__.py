"""Application layer: the eventsourcing Application (load -> call -> save), projections, jobs."""
