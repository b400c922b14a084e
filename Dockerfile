# The monitor daemon as a container: non-root, storage/ and feeds.toml mounted by compose.
FROM python:3.11-slim

RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin monitor
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir . && mkdir -p /app/storage && chown monitor:monitor /app/storage
COPY feeds.toml ./feeds.toml

USER monitor
ENV MONITOR_CONFIG=/app/feeds.toml \
    MONITOR_HEARTBEAT=/tmp/monitor.heartbeat \
    PYTHONUNBUFFERED=1
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["monitor", "health", "--max-age", "120"]
CMD ["monitor", "run", "--log-format", "json"]
