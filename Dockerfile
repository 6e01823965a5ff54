# One image for the services (ingest, streams, sinks, notify, dashboard; pick with the
# command) and every other command of the project: `pipeline` (replay, dlq, rebuild, inspect)
# and `pipeline-loadgen`.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY deploy/requirements-image.lock ./deploy/
# the locked runtime dependencies, every file checked against its hash (make lock writes it)
RUN pip install --require-hashes --no-deps -r deploy/requirements-image.lock
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
RUN pip install --no-deps --no-build-isolation . && useradd --system --uid 10001 pipeline && mkdir -p /data && chown pipeline /data
USER pipeline
ENV PIPELINE_CONFIG=/app/config/compose.toml
EXPOSE 8000 8001
CMD ["pipeline-ingest"]
