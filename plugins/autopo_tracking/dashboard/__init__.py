"""The operator's view of the tracking tables, inside Airflow's UI: a FastAPI app the plugin mounts at
``/autopo`` (``app``), with the JSON admin API under ``/autopo/api/v1/`` and server-rendered pages under
``/autopo/``. ``queries`` reads the warehouse (through the tracking hook's connection), ``access`` asks
Airflow's auth manager who may see and retry what, ``charts`` draws the metrics as SVG.
"""
