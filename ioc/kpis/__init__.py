"""The KPI set (``../shared/reference/kpis.md``) from the history store: air quality over local days
(``air``), the centre's own alert handling (``ops``), read by ``store``, served by ``GET /v1/kpis``."""
