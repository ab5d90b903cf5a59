"""`rag eval`: metrics, a runner over the Pipeline's public API, and the report."""
