-- Complete daily stock-health snapshot: one row per (snapshot_date, store_id, sku),
-- exactly the columns of D.csv (docs: shared spec stock_health.md) plus loaded_at.
-- A date is replaced atomically by autopo_pipelines.warehouse.replace_date_rows.

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
    -- The contract defines emergency from status; a disagreement is a transform bug.
    CONSTRAINT stock_health_snapshots_emergency_check
        CHECK (emergency = (status IN ('out_of_stock', 'critical'))),
    CONSTRAINT stock_health_snapshots_keys_not_blank CHECK (store_id <> '' AND sku <> '')
);

-- The primary key serves per-date and per-(date, store) reads; these serve
-- one item's history and the daily emergency list.
CREATE INDEX stock_health_snapshots_sku_date_idx
    ON stock_health_snapshots (sku, snapshot_date);
CREATE INDEX stock_health_snapshots_emergency_idx
    ON stock_health_snapshots (snapshot_date, store_id)
    WHERE emergency;
