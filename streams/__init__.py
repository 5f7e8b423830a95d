"""The Faust application: agents that read topics, call ioc's pure functions, and write topics and tables."""
