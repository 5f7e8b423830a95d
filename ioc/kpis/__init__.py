"""The KPI set (``../shared/reference/kpis.md``) from the history store: pure figures per domain (``air``,
``traffic``, ``water``, and ``ops`` for the centre's own alert handling), read by ``store``, assembled
by ``report``, served by ``GET /v1/kpis`` and written as open data by ``export``."""
