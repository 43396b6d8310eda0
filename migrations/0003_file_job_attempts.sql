-- Attempts of a file's transform, counted once per (DAG run, try): a write that is
-- retried after its acknowledgement was lost does not count twice. Reused,
-- unchanged files do not count; retry_count is attempts minus the first.
-- dag_run_id says which run last touched the row, so a listing that arrives after
-- a transform already started does not reset that transform's progress.
ALTER TABLE pipeline_file_jobs
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN last_attempt text,
    ADD COLUMN dag_run_id text,
    ADD CONSTRAINT pipeline_file_jobs_attempts_check CHECK (attempts >= 0);

UPDATE pipeline_file_jobs SET attempts = retry_count + 1 WHERE status IN ('completed', 'failed');
