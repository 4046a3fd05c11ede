# The propylon gateway. Build from the repository root:  docker build -t propylon .
#
# Two stages: the first compiles the request path with mypyc (setup.py) into a wheel, which
# needs a C compiler; the image that runs has only the wheel and its dependencies.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md /src/
COPY src /src/src
RUN pip wheel --no-deps --wheel-dir /wheels /src

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

COPY deploy /etc/propylon
# Mount points of compose's gateway-key (private, 0700) and gateway-public-keys volumes: a
# fresh named volume takes this ownership, so the app user can write the key there.
RUN mkdir -p /keys/private /keys/public && chown -R app:app /keys && chmod 700 /keys/private
USER app
EXPOSE 8000
# SIGTERM drains in-flight requests, then the process exits 0.
STOPSIGNAL SIGTERM
CMD ["propylon", "run", "--config", "/etc/propylon/ocelot.compose.json", \
     "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
