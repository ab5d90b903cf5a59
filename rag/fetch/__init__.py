"""Articles and feeds from the web: which URLs may be fetched, a polite client, feeds, and their refresh."""
