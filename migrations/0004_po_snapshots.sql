-- Daily PO snapshot: one row per (snapshot_date, po_number, store_id, sku), exactly the
-- columns of D.csv (../shared/spec/po_snapshots.md) plus loaded_at.
-- A date is replaced atomically by autopo_pipelines.warehouse.replace_date_rows.

CREATE TABLE po_snapshots (
    snapshot_date date        NOT NULL,
    po_number     text        NOT NULL,
    store_id      text        NOT NULL,
    sku           text        NOT NULL,
    supplier_id   text,
    supplier_name text,
    po_date       date,
    expected_date date,
    qty_ordered   numeric     NOT NULL,
    qty_received  numeric     NOT NULL,
    qty_open      numeric     NOT NULL,
    status_norm   text        NOT NULL,
    days_overdue  integer     NOT NULL,
    is_overdue    boolean     NOT NULL,
    -- several names, "; "-separated, when the line came in more than one file
    source_file   text,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT po_snapshots_pkey PRIMARY KEY (snapshot_date, po_number, store_id, sku),
    CONSTRAINT po_snapshots_status_norm_check CHECK (status_norm IN ('open', 'partial', 'closed', 'cancelled')),
    CONSTRAINT po_snapshots_quantities_check CHECK (qty_ordered >= 0 AND qty_received >= 0 AND qty_open >= 0),
    -- The contract derives these; a disagreement is a transform bug, refused at load.
    CONSTRAINT po_snapshots_open_check CHECK (status_norm IN ('open', 'partial') OR qty_open = 0),
    CONSTRAINT po_snapshots_overdue_check CHECK (days_overdue >= 0 AND is_overdue = (days_overdue > 0)),
    CONSTRAINT po_snapshots_keys_not_blank CHECK (po_number <> '' AND store_id <> '' AND sku <> '')
);

-- stock_health reads the open quantity per (store, sku) of a date; purchasing lists the overdue lines.
CREATE INDEX po_snapshots_open_idx ON po_snapshots (snapshot_date, store_id, sku) WHERE qty_open > 0;
CREATE INDEX po_snapshots_overdue_idx ON po_snapshots (snapshot_date, days_overdue) WHERE is_overdue;
