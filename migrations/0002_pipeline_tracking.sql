-- Tracking of pipeline runs and of each source file within a run
-- (docs: shared spec tracking.md).

CREATE TABLE pipeline_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline_name   text        NOT NULL,
    date            date        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',
    total_files     integer     NOT NULL DEFAULT 0,
    processed_files integer     NOT NULL DEFAULT 0,
    failed_files    integer     NOT NULL DEFAULT 0,
    skipped_files   integer     NOT NULL DEFAULT 0,
    total_rows      integer     NOT NULL DEFAULT 0,
    rejected_rows   integer     NOT NULL DEFAULT 0,
    -- NULL: not known yet (files not listed); '{}': every expected store sent a file.
    missing_stores  text[],
    dag_run_id      text,
    attempt         integer     NOT NULL DEFAULT 0,
    started_at      timestamptz,
    completed_at    timestamptz,
    error           text,
    -- A rerun or backfill of a date updates its row instead of adding one.
    CONSTRAINT pipeline_runs_pipeline_name_date_key UNIQUE (pipeline_name, date),
    CONSTRAINT pipeline_runs_status_check CHECK (status IN (
        'pending', 'processing', 'completed', 'completed_with_errors', 'failed'
    )),
    CONSTRAINT pipeline_runs_counters_check CHECK (
        total_files >= 0 AND processed_files >= 0 AND failed_files >= 0
        AND skipped_files >= 0 AND total_rows >= 0 AND rejected_rows >= 0 AND attempt >= 0
    )
);

-- Dashboards list recent dates across pipelines and look for unfinished runs.
CREATE INDEX pipeline_runs_date_idx ON pipeline_runs (date);
CREATE INDEX pipeline_runs_unfinished_idx ON pipeline_runs (pipeline_name, date)
    WHERE status IN ('pending', 'processing');

CREATE TABLE pipeline_file_jobs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline_run_id   bigint      NOT NULL
        REFERENCES pipeline_runs (id) ON DELETE CASCADE,
    file_path         text        NOT NULL,
    file_name         text        NOT NULL,
    -- NULL for unrouted files, whose name yields no store.
    store_id          text,
    -- content hash; NULL until the file has been read
    checksum          text,
    -- bigint: a size is not a counter and files may pass 2 GiB.
    size_bytes        bigint,
    status            text        NOT NULL DEFAULT 'queued',
    retry_count       integer     NOT NULL DEFAULT 0,
    rows_in           integer     NOT NULL DEFAULT 0,
    rows_out          integer     NOT NULL DEFAULT 0,
    rows_rejected     integer     NOT NULL DEFAULT 0,
    error             text,
    intermediate_path text,
    map_index         integer,
    started_at        timestamptz,
    completed_at      timestamptz,
    -- The unique index also serves the foreign key (pipeline_run_id leads).
    CONSTRAINT pipeline_file_jobs_run_file_key UNIQUE (pipeline_run_id, file_path),
    CONSTRAINT pipeline_file_jobs_status_check CHECK (status IN (
        'queued', 'processing', 'completed', 'failed', 'skipped', 'unrouted'
    )),
    CONSTRAINT pipeline_file_jobs_counters_check CHECK (
        retry_count >= 0 AND rows_in >= 0 AND rows_out >= 0 AND rows_rejected >= 0
        AND (size_bytes IS NULL OR size_bytes >= 0)
    )
);

-- Finding earlier processing of identical content, and a store's file history.
CREATE INDEX pipeline_file_jobs_checksum_idx ON pipeline_file_jobs (checksum);
CREATE INDEX pipeline_file_jobs_store_idx ON pipeline_file_jobs (store_id);
CREATE INDEX pipeline_file_jobs_unfinished_idx ON pipeline_file_jobs (pipeline_run_id)
    WHERE status IN ('queued', 'processing', 'failed');
