# Corral gateway image. Build context: the repository root (see .dockerignore).
#   docker build -t corral-gateway:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Unprivileged user; /var/lib/corral is the working directory, so the usage journal
# (corral-usage.journal, relative to the working directory) lands on a writable path
# that compose/Kubernetes can back with a per-replica volume.
RUN groupadd --system --gid 10001 corral \
    && useradd --system --uid 10001 --gid corral --home-dir /var/lib/corral --shell /usr/sbin/nologin corral \
    && mkdir -p /var/lib/corral /etc/corral \
    && chown corral:corral /var/lib/corral

WORKDIR /src
# Only what the distribution needs: the metadata, the package and policies/ (gateway/data/
# default_policy.yaml and policy_schema.json are symlinks into policies/; without it the
# wheel silently ships without the default policy and its schema).
COPY pyproject.toml ./
COPY policies ./policies
COPY gateway ./gateway
RUN pip install . && rm -rf /src

COPY policies /etc/corral/policies

USER corral
WORKDIR /var/lib/corral
EXPOSE 8080

# python:3.11-slim has no curl: probe /healthz with the standard library.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["corral"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
