-- How many times a file's transform really ran for its date (reused, unchanged
-- files do not count); retry_count is this minus the first attempt.
ALTER TABLE pipeline_file_jobs
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT pipeline_file_jobs_attempts_check CHECK (attempts >= 0);
