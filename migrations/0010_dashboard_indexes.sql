-- The dashboard's reads (autopo_tracking.dashboard.queries), each bounded by an index so that years of
-- history answer as fast as a new warehouse (make bench-dashboard):
-- * the failed files, newest first, across pipelines: a partial index of the few failed rows;
-- * a run's files with their statuses, for the grid and the metrics: covered, no heap visits.
CREATE INDEX pipeline_file_jobs_failed_idx ON pipeline_file_jobs (pipeline_run_id) WHERE status = 'failed';
CREATE INDEX pipeline_file_jobs_run_status_idx ON pipeline_file_jobs (pipeline_run_id)
    INCLUDE (store_id, status, file_name);
