"""One pipeline day, step by step, around one :class:`Day` value.

- ``core``: the ``Day`` (config, data root, date, run, warehouse) and the pipeline's source;
- ``state``: the day's typed records and where they live (the only module that knows the layout);
- ``listing``: readiness (the sensor), listing and routing the files, the day's reference data;
- ``file_run``: transforming one file or a batch of them into parts;
- ``parts``: every routed file's part this run, and the last good versions a rerun keeps;
- ``outputs``: the day's CSV files from the parts, the load into the warehouse, the row accounting;
- ``checks``: whether the day is complete (check_day).
"""

from autopo_pipelines.day.core import Day

__all__ = ["Day"]
