# syntax=docker/dockerfile:1
# The service under gunicorn with uvicorn workers: docker build -t agent-platform .

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# The runtime dependencies only: the development tools are in requirements-dev.lock.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install -r /tmp/requirements.lock

FROM python:3.11-slim
# The code runs from /app through PYTHONPATH rather than as an installed package: app/config.py
# finds alembic.ini and migrations/ beside the code, and a copy in site-packages would not have them.
# DATA_DIR is only used without DATABASE_URL (the embedded PostgreSQL), and must be writable.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/home/app/data
RUN useradd --create-home --uid 10001 app
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
USER app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/api/v1/health' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["gunicorn", "-c", "app/gunicorn_conf.py", "app.main:create_app()"]
