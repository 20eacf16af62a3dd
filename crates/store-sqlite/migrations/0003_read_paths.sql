-- Indexes for the paths the HTTP API reads on every person record.
CREATE INDEX medical_task_by_booking ON medical_task (booking_id);
