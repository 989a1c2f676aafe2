"""The hub's DAGs: one per registered agency source and one integration DAG per standard."""

from hub.airflow_dags import build_dags

globals().update(build_dags())
