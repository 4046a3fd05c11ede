# The propylon gateway. Build from the repository root:  docker build -t propylon .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app
COPY pyproject.toml README.md /app/
COPY src /app/src
RUN pip install /app

COPY deploy /etc/propylon
USER app
EXPOSE 8000
# SIGTERM drains in-flight requests, then the process exits 0.
STOPSIGNAL SIGTERM
CMD ["propylon", "run", "--config", "/etc/propylon/ocelot.compose.json", \
     "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
