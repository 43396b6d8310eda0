-- A file's tracking row may say 'retained': the file is gone from the source (or its new version
-- failed) and its last good version's rows stay in the date's snapshot (autopo_pipelines.day_run,
-- collect_parts); docs/tracking.md.
ALTER TABLE pipeline_file_jobs DROP CONSTRAINT pipeline_file_jobs_status_check;
ALTER TABLE pipeline_file_jobs ADD CONSTRAINT pipeline_file_jobs_status_check CHECK (status IN (
    'queued', 'processing', 'completed', 'failed', 'skipped', 'unrouted', 'retained'
));
