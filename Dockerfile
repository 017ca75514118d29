# The exchange's one image: every node, the audit collector and the admin CLI (`exchange ...`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY exchange ./exchange
COPY adapters ./adapters
# The PostgreSQL extra (asyncpg): in compose every party keeps its store in PostgreSQL.
# The city's catalog and schemas are package data (exchange/data), installed with the code;
# the sources are removed, so nothing runs from the checkout's layout.
RUN pip install --no-cache-dir -c constraints.txt ".[postgres]" \
    && cd / && rm -rf /src

# EXCHANGE_CATALOG / EXCHANGE_SCHEMAS_DIR would point at a deployment's own catalog.
ENV EXCHANGE_CERTS_DIR=/certs \
    EXCHANGE_STORE_DIR=/var/lib/exchange \
    EXCHANGE_METRICS_PORT=9464 \
    EXCHANGE_METRICS_HOST=0.0.0.0

# /metrics, /health and /ready of a node (`node run`, `bridge ...`) or the collector.
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 \
    CMD ["exchange", "probe"]

WORKDIR /var/lib/exchange
RUN useradd --system --uid 10001 --home-dir /var/lib/exchange exchange \
    && mkdir -p /certs /var/lib/exchange \
    && chown exchange /certs /var/lib/exchange
USER exchange

ENTRYPOINT ["exchange"]
CMD ["--help"]
