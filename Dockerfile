# Production image: the same code as `make run`, served by gunicorn; worker and beat reuse it.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CLIENTELE_VAR_DIR=/app/var
WORKDIR /app
RUN useradd --system --home /app clientele
COPY pyproject.toml README.md ./
COPY crm ./crm
COPY customers ./customers
COPY sales ./sales
COPY campaigns ./campaigns
COPY analytics ./analytics
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var && chown -R clientele /app/var
USER clientele
EXPOSE 8000
CMD ["gunicorn", "crm.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
