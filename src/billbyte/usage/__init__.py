"""Usage ingestion: vendor files → one canonical, exact, de-duplicated usage store."""
