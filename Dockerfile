# One image for the services (ingest, streams, sinks, notify, dashboard; pick with the
# command) and every other command of the project: `pipeline` (replay, dlq, rebuild, inspect)
# and `pipeline-loadgen`.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY domain ./domain
COPY ingest ./ingest
COPY streams ./streams
COPY sinks ./sinks
COPY stack ./stack
COPY ops ./ops
COPY bench ./bench
COPY notify ./notify
COPY testing ./testing
COPY dashboard ./dashboard
COPY config ./config
RUN pip install . && useradd --system --uid 10001 pipeline && mkdir -p /data && chown pipeline /data
USER pipeline
ENV PIPELINE_CONFIG=/app/config/compose.toml
EXPOSE 8000 8001
CMD ["pipeline-ingest"]
