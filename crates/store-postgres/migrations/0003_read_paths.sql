-- PostgreSQL form of the SQLite migration of the same number (0003_read_paths.sql).

-- Indexes for the paths the HTTP API reads on every person record.
CREATE INDEX medical_task_by_booking ON medical_task (booking_id);
