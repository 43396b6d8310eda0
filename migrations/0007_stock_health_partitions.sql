-- stock_health_snapshots becomes partitioned by snapshot_date, one partition per date
-- (<table>_pYYYYMMDD). A load then builds the date's rows, indexes and statistics in a table
-- of its own, where nobody reads, and swaps it in for the date's partition in one short
-- transaction (autopo_pipelines.warehouse.replace_date_rows): readers wait milliseconds, not
-- the seconds that deleting and inserting millions of indexed rows takes. Same columns,
-- constraints and indexes as 0001; the rows already loaded are moved into partitions.

ALTER TABLE stock_health_snapshots RENAME TO stock_health_snapshots_unpartitioned;
ALTER TABLE stock_health_snapshots_unpartitioned
    RENAME CONSTRAINT stock_health_snapshots_pkey TO stock_health_snapshots_unpartitioned_pkey;
ALTER INDEX stock_health_snapshots_sku_date_idx RENAME TO stock_health_snapshots_unpartitioned_sku_date_idx;
ALTER INDEX stock_health_snapshots_emergency_idx RENAME TO stock_health_snapshots_unpartitioned_emergency_idx;

CREATE TABLE stock_health_snapshots (
    snapshot_date       date        NOT NULL,
    store_id            text        NOT NULL,
    sku                 text        NOT NULL,
    product_name        text,
    category            text,
    supplier_id         text,
    supplier_name       text,
    stock_on_hand       numeric     NOT NULL,
    sales_qty           numeric     NOT NULL,
    avg_daily_sales     numeric     NOT NULL,
    -- blank when avg_daily_sales = 0
    days_of_cover       numeric,
    lead_time_days      numeric     NOT NULL,
    reorder_point       numeric     NOT NULL,
    target_stock        numeric     NOT NULL,
    on_order_qty        numeric     NOT NULL,
    suggested_order_qty numeric     NOT NULL,
    status              text        NOT NULL,
    emergency           boolean     NOT NULL,
    -- blank when the store file has no cost
    unit_cost           numeric,
    stock_value         numeric,
    source_file         text,
    loaded_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_health_snapshots_pkey PRIMARY KEY (snapshot_date, store_id, sku),
    CONSTRAINT stock_health_snapshots_status_check CHECK (status IN (
        'out_of_stock', 'inactive', 'no_sales', 'critical', 'low', 'overstock', 'healthy'
    )),
    CONSTRAINT stock_health_snapshots_emergency_check
        CHECK (emergency = (status IN ('out_of_stock', 'critical'))),
    CONSTRAINT stock_health_snapshots_keys_not_blank CHECK (store_id <> '' AND sku <> '')
) PARTITION BY LIST (snapshot_date);

CREATE INDEX stock_health_snapshots_sku_date_idx
    ON stock_health_snapshots (sku, snapshot_date);
CREATE INDEX stock_health_snapshots_emergency_idx
    ON stock_health_snapshots (snapshot_date, store_id)
    WHERE emergency;

DO $$
DECLARE
    day date;
BEGIN
    FOR day IN SELECT DISTINCT snapshot_date FROM stock_health_snapshots_unpartitioned LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF stock_health_snapshots FOR VALUES IN (%L)',
            'stock_health_snapshots_p' || to_char(day, 'YYYYMMDD'), day
        );
    END LOOP;
END
$$;

INSERT INTO stock_health_snapshots SELECT * FROM stock_health_snapshots_unpartitioned;
DROP TABLE stock_health_snapshots_unpartitioned;
