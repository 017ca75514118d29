# The exchange's one image: every node, the audit collector and the admin CLI (`exchange ...`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md catalog.toml ./
COPY exchange ./exchange
COPY adapters ./adapters
COPY schemas ./schemas
# The PostgreSQL extra (asyncpg): in compose every party keeps its store in PostgreSQL.
RUN pip install --no-cache-dir -c constraints.txt ".[postgres]"

# Import the package from /app, not site-packages, so that what it finds beside itself
# (catalog.toml, schemas/) is there; the variables say it again for the settings.
ENV PYTHONPATH=/app \
    EXCHANGE_CATALOG=/app/catalog.toml \
    EXCHANGE_SCHEMAS_DIR=/app/schemas \
    EXCHANGE_CERTS_DIR=/certs \
    EXCHANGE_STORE_DIR=/var/lib/exchange

RUN useradd --system --uid 10001 --home-dir /var/lib/exchange exchange \
    && mkdir -p /certs /var/lib/exchange \
    && chown exchange /certs /var/lib/exchange
USER exchange

ENTRYPOINT ["exchange"]
CMD ["--help"]
