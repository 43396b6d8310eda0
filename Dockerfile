# The autopo pipelines' Airflow image: the official Airflow image of the pinned version (requirements.in:
# apache-airflow==3.3.2) and Python, the runtime pins, the package (autopo_pipelines and the tracking
# plugin's autopo_tracking), the DAGs, the plugin, the migrations and the project's airflow.cfg.
# docker-compose.yaml runs every Airflow component from it; docs/deployment.md.
#
#   docker compose build            (or: docker build -t autopo-pipelines .)
#
# Nothing secret goes in: keys, passwords and connections come from the environment at run time
# (.env, see .env.example). tests/unit/test_deployment_files.py checks that this FROM follows the pin.
FROM apache/airflow:3.3.2-python3.11

# The official image installs as the airflow user, into its own site-packages.
USER airflow

# The runtime pins only (never requirements-dev.txt): requirements.txt pins the whole tree, Airflow
# itself included (apache-airflow==3.3.2, the image's own version, so pip never changes Airflow).
# Airflow's constraints file is not used: it pins the image's default versions, which the project's
# pins replace. This is the way Airflow's docs extend the image (docker-stack-docs, "add requirement
# packages": pip install "apache-airflow==${AIRFLOW_VERSION}" -r requirements.txt, the image's
# AIRFLOW_VERSION guarding against an accidental Airflow upgrade or downgrade).
COPY --chown=airflow:0 requirements.txt /tmp/autopo/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/autopo/requirements.txt

# The package: the pins above as constraints, so installing it changes nothing they installed; built
# with the pinned setuptools already installed (no build-time download).
COPY --chown=airflow:0 pyproject.toml /tmp/autopo/src/pyproject.toml
COPY --chown=airflow:0 include /tmp/autopo/src/include
COPY --chown=airflow:0 plugins /tmp/autopo/src/plugins
RUN pip install --no-cache-dir --no-build-isolation -c /tmp/autopo/requirements.txt /tmp/autopo/src \
    && rm -rf /tmp/autopo

# Where the image's Airflow (AIRFLOW_HOME=/opt/airflow) looks: the DAG file and the pipeline configs,
# the plugin (registered from here; its modules are the installed package's), the project's SQL
# migrations (airflow-init applies them), and airflow.cfg. Two of airflow.cfg's settings are for the
# local stack (executor = LocalExecutor, the scheduler's health check off): docker-compose.yaml
# overrides them by environment (AIRFLOW__CORE__EXECUTOR=CeleryExecutor, ...).
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 migrations /opt/airflow/migrations
COPY --chown=airflow:0 airflow.cfg /opt/airflow/airflow.cfg

# The simple auth manager's password file lives here (a volume in docker-compose.yaml); made in the
# image so the volume starts owned by airflow. Group 0 as the official image's folders, for an
# arbitrary user id in group 0 (OpenShift style).
RUN mkdir -p /opt/airflow/auth && chmod 0770 /opt/airflow/auth

USER airflow
