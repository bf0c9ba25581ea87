# churn as a container: `docker build -t churn .`, then `docker run churn train|predict|serve`.
# The image holds the locked runtime, the package, config.yaml and the shipped data set; no dev
# tools, no tests and no models: runs live in a volume mounted at /app/models.
# BASE_IMAGE: any image with Python 3.11+ as python3 and its venv module (python:3.11-slim by default).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
RUN python3 -m venv /opt/venv
COPY requirements.txt pyproject.toml README.md ./
COPY src ./src
# The runtime lock, every version pinned, then the package itself from this source (not editable);
# the libraries' own test suites (125 MB) are left out.
RUN grep -v '^-e ' requirements.txt > requirements.lock \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.lock \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && find /opt/venv/lib -depth -type d -name tests -exec rm -rf {} +

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY config.yaml config.schema.json ./
COPY data/raw ./data/raw
# A numeric, non-root user; models/ and data/predictions/ are where it writes.
RUN mkdir -p models data/predictions && chown -R 10001:10001 models data/predictions
USER 10001:10001
VOLUME ["/app/models"]
EXPOSE 8000
# Liveness with Python's standard library: the slim base image has no curl. CHURN_HEALTH_URL
# names another port when `serve --port` changes it.
ENV CHURN_HEALTH_URL=http://127.0.0.1:8000/health
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(os.environ['CHURN_HEALTH_URL'], timeout=4).status != 200)"]
ENTRYPOINT ["churn"]
CMD ["serve", "--host", "0.0.0.0"]
