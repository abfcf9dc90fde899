"""The pipeline that writes circuits into Neo4j (`neurflow-ingest`)."""
