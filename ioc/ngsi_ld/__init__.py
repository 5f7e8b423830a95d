"""NGSI-LD's query languages as pure functions: ``q`` (``query``) and geo-queries (``geo``), ETSI GS CIM 009
§4.9 and §4.10, for the context-source reads of ``ioc.api.ngsi_ld``."""
