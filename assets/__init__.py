"""Asset definitions by stage: ingest → staged → rules → publish."""
