-- Which dates of which snapshot table have been loaded, and when: written in the
-- load's own transaction, so it never disagrees with the rows. It tells "loaded
-- with no rows" from "never loaded" (stock_health's on-order link needs that).
CREATE TABLE snapshot_loads (
    table_name    text        NOT NULL,
    snapshot_date date        NOT NULL,
    rows          integer     NOT NULL CHECK (rows >= 0),
    loaded_at     timestamptz NOT NULL,
    CONSTRAINT snapshot_loads_pkey PRIMARY KEY (table_name, snapshot_date)
);

-- What a run wants people to know that is not an error, e.g. that stock_health
-- ran without PO data for the date (on_order_qty 0). NULL: not known yet.
ALTER TABLE pipeline_runs ADD COLUMN notes text[];
