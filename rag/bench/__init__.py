"""`rag bench`: ingest, question and HTTP figures, each against a real peer measured in the same run."""
