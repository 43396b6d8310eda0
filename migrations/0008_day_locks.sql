-- One run at a time per pipeline and business date (autopo_pipelines.day_lock): taken by the first
-- task of a run that writes the day's state, released by its check_day. A lock left by a run that has
-- ended is taken over by a compare-and-swap on run_id, so two runs can never both take it, on any host.
CREATE TABLE day_locks (
    pipeline_name text        NOT NULL,
    date          date        NOT NULL,
    run_id        text        NOT NULL,
    since         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline_name, date)
);
