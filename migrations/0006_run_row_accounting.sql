-- Where every row of the day's source files went: rows_in = total_rows (in the
-- snapshot) + merged_rows (duplicates folded into another row) + skipped_rows
-- (blank, no key, total lines) + rejected_rows. Files that failed as a whole
-- are not in these counts: they are failed_files, with their error.
ALTER TABLE pipeline_runs
    ADD COLUMN rows_in      integer,
    ADD COLUMN skipped_rows integer,
    ADD COLUMN merged_rows  integer,
    ADD CONSTRAINT pipeline_runs_row_accounting_check CHECK (
        rows_in IS NULL OR skipped_rows IS NULL OR merged_rows IS NULL
        OR (rows_in >= 0 AND skipped_rows >= 0 AND merged_rows >= 0
            AND rows_in = total_rows + merged_rows + skipped_rows + rejected_rows)
    );
