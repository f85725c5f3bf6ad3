"""Clientele settings: one module, configured from environment variables.

Local defaults point at the embedded PostgreSQL and Redis that `make run` / `make test` start
under `var/` (see `crm.launcher`), so `manage.py` in another terminal reaches the same servers.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
import dj_email_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("CLIENTELE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


def _local_secret_key() -> str:
    # Generated once per checkout and kept out of git (var/ is ignored), so a fresh clone never
    # shares a key with anyone else's.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


# Ports of the embedded servers started by crm.launcher; fixed so every process agrees.
EMBEDDED_PG_PORT = int(os.getenv("CLIENTELE_PG_PORT", "54329"))
EMBEDDED_REDIS_PORT = int(os.getenv("CLIENTELE_REDIS_PORT", "56379"))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.getenv("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # django.contrib.admin with a site that only Administrators may enter (crm/admin_site.py).
    "crm.admin_site.ClienteleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "axes",
    "crm",
    "customers",
    "sales",
    "analytics",
    "loyalty",
    "campaigns",
    "demo",
]

MIDDLEWARE = [
    # First: reads a chunked body before anything else touches it, and turns away query
    # strings that no column can store (crm.inputs).
    "crm.inputs.InputBoundaryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "crm.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it must see the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL") or f"postgres://clientele@127.0.0.1:{EMBEDDED_PG_PORT}/clientele",
        conn_max_age=int(os.getenv("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DATABASES["default"]["TEST"] = {"NAME": os.getenv("TEST_DATABASE_NAME", "test_clientele")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.getenv("REDIS_URL") or f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.getenv("CACHE_KEY_PREFIX", "clientele"),
    }
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"

# Login throttling: a user/address pair is locked out after repeated failures.
AXES_FAILURE_LIMIT = int(os.getenv("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.getenv("AXES_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The lockout is a page that says so, not a bare 429.
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"

LANGUAGE_CODE = os.getenv("LANGUAGE_CODE", "ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.getenv("TIME_ZONE", "Europe/Moscow")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "crm.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = VAR_DIR / "media"

_email = dj_email_url.parse(os.getenv("EMAIL_URL", "console://"))
EMAIL_BACKEND = os.getenv("EMAIL_BACKEND", _email["EMAIL_BACKEND"])
EMAIL_HOST = os.getenv("EMAIL_HOST", _email["EMAIL_HOST"] or "localhost")
EMAIL_PORT = int(os.getenv("EMAIL_PORT", _email["EMAIL_PORT"] or 25))
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", _email["EMAIL_HOST_USER"] or "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", _email["EMAIL_HOST_PASSWORD"] or "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", bool(_email["EMAIL_USE_TLS"]))
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", bool(_email["EMAIL_USE_SSL"]))
# A hung SMTP server must not hold a sending worker (or an orphaned pool child finishing its
# message, see campaigns/README.md) forever: the timeout turns it into a transient error.
EMAIL_TIMEOUT = float(os.getenv("EMAIL_TIMEOUT", "30"))
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "Clientele <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Production-safe defaults whenever DEBUG is off; behind a TLS proxy set SECURE_COOKIES=1 etc.
SESSION_COOKIE_HTTPONLY = True
# A working day, not Django's two weeks: a session left open on a till is a way in. Shared tills
# set SESSION_EXPIRE_AT_BROWSER_CLOSE=1, so closing the browser signs the associate out.
SESSION_COOKIE_AGE = int(os.getenv("SESSION_COOKIE_AGE", str(12 * 60 * 60)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and env_bool("HTTPS", False))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.getenv("SECURE_HSTS_SECONDS", "0"))
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy and Permissions-Policy on every response (crm/security.py): scripts
# only from our own static files, no inline code, no eval, no framing. CSP_REPORT_ONLY=1 sends
# the policy as Content-Security-Policy-Report-Only while a customised template is checked.
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.getenv("DATA_UPLOAD_MAX_MEMORY_SIZE", str(5 * 1024 * 1024)))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so a request without credentials gets 401 with `WWW-Authenticate: Api-Key`.
        "sales.api.authentication.ApiKeyAuthentication",
        # A person's token, stored hashed (DRF's own authtoken keeps keys in clear).
        "crm.api_tokens.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": ["crm.api.LimitedJSONParser"],
    "EXCEPTION_HANDLER": "crm.api.exception_handler",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Clientele API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "crm.api.schema_postprocess",
    ],
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

# Business defaults; per-user export caps live on the staff profile.
CLIENTELE_DEFAULT_REGION = os.getenv("CLIENTELE_DEFAULT_REGION", "RU")
CLIENTELE_DEFAULT_CURRENCY = os.getenv("CLIENTELE_DEFAULT_CURRENCY", "RUB")
CLIENTELE_EXPORT_DAILY_CAP = int(os.getenv("CLIENTELE_EXPORT_DAILY_CAP", "5000"))
# Cards a user without the export permission may see unmasked per day (customers/disclosure.py).
CLIENTELE_UNMASKED_DAILY_CAP = int(os.getenv("CLIENTELE_UNMASKED_DAILY_CAP", "50"))
# Where a campaign's test send may go besides the author's own email: admin-kept, comma-separated
# emails and phones (a phone of the marketing team's test handset).
CLIENTELE_TEST_ADDRESSES = [
    a.strip() for a in os.getenv("CLIENTELE_TEST_ADDRESSES", "").split(",") if a.strip()
]
# Rows per page of the customer list API.
CLIENTELE_API_MAX_PAGE_SIZE = int(os.getenv("CLIENTELE_API_MAX_PAGE_SIZE", "100"))
# The audit page flags a user opening more cards than this in one hour, and daily exports that
# reach this share of the user's cap.
CLIENTELE_SUSPICIOUS_VIEWS_PER_HOUR = int(os.getenv("CLIENTELE_SUSPICIOUS_VIEWS_PER_HOUR", "50"))
CLIENTELE_SUSPICIOUS_EXPORT_SHARE = float(os.getenv("CLIENTELE_SUSPICIOUS_EXPORT_SHARE", "0.8"))

# Parallel workers per statement of the nightly metrics run (analytics/metrics/). The leader
# process works too, so the database server's cores minus one: more workers than cores make
# the per-customer hash tables evict each other from the cache. Set it when PostgreSQL runs
# on another machine than the worker.
CLIENTELE_METRICS_PARALLEL_WORKERS = int(
    os.getenv("CLIENTELE_METRICS_PARALLEL_WORKERS", str(max(1, (os.cpu_count() or 2) - 1)))
)

# Campaigns (see campaigns/services/delivery.py). Links in messages point at CLIENTELE_SITE_URL.
CLIENTELE_SITE_URL = os.getenv("CLIENTELE_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
CLIENTELE_MESSAGE_ID_DOMAIN = os.getenv("CLIENTELE_MESSAGE_ID_DOMAIN", "clientele.local")
# Frequency cap: at most K marketing messages per customer in any rolling D days.
CLIENTELE_CAP_MESSAGES = int(os.getenv("CLIENTELE_CAP_MESSAGES", "3"))
CLIENTELE_CAP_DAYS = int(os.getenv("CLIENTELE_CAP_DAYS", "7"))
# Quiet hours in the customer's home store time zone, "start-end" in whole hours (wraps midnight).
CLIENTELE_QUIET_HOURS = os.getenv("CLIENTELE_QUIET_HOURS", "21-9")
CLIENTELE_CAMPAIGN_LEASE_SECONDS = int(os.getenv("CLIENTELE_CAMPAIGN_LEASE_SECONDS", "300"))
CLIENTELE_CAMPAIGN_BATCH = int(os.getenv("CLIENTELE_CAMPAIGN_BATCH", "200"))
CLIENTELE_CAMPAIGN_PARALLEL_TASKS = int(os.getenv("CLIENTELE_CAMPAIGN_PARALLEL_TASKS", "2"))
CLIENTELE_CAMPAIGN_MAX_ATTEMPTS = int(os.getenv("CLIENTELE_CAMPAIGN_MAX_ATTEMPTS", "5"))
CLIENTELE_CAMPAIGN_QUEUE = os.getenv("CLIENTELE_CAMPAIGN_QUEUE", "celery")
CLIENTELE_CHANNEL_BACKENDS = {
    "email": os.getenv("CLIENTELE_EMAIL_CHANNEL", "campaigns.channels.email.EmailChannel"),
    "sms": os.getenv("CLIENTELE_SMS_CHANNEL", "campaigns.channels.http.HttpGatewayChannel"),
    "messenger": os.getenv(
        "CLIENTELE_MESSENGER_CHANNEL", "campaigns.channels.http.HttpGatewayChannel"
    ),
}
CLIENTELE_SMS_GATEWAY_URL = os.getenv("CLIENTELE_SMS_GATEWAY_URL", "")
CLIENTELE_SMS_GATEWAY_TOKEN = os.getenv("CLIENTELE_SMS_GATEWAY_TOKEN", "")
CLIENTELE_SMS_SENDER = os.getenv("CLIENTELE_SMS_SENDER", "Clientele")
CLIENTELE_MESSENGER_GATEWAY_URL = os.getenv("CLIENTELE_MESSENGER_GATEWAY_URL", "")
CLIENTELE_MESSENGER_GATEWAY_TOKEN = os.getenv("CLIENTELE_MESSENGER_GATEWAY_TOKEN", "")
CLIENTELE_GATEWAY_TIMEOUT = float(os.getenv("CLIENTELE_GATEWAY_TIMEOUT", "10"))

# Personal data (152-FZ), see customers/privacy and the README's "Personal data" section.
# Days between a withdrawal of consent to processing and the erasure (the law allows 30 at most).
CLIENTELE_ERASURE_GRACE_DAYS = int(os.getenv("CLIENTELE_ERASURE_GRACE_DAYS", "14"))
# Working days to answer a subject-access request (152-FZ art. 14 since 2022: ten).
CLIENTELE_SUBJECT_ACCESS_DAYS = int(os.getenv("CLIENTELE_SUBJECT_ACCESS_DAYS", "10"))
# Retention review: leads with no purchase and no contact, customers with no purchase (years).
CLIENTELE_RETENTION_LEAD_YEARS = int(os.getenv("CLIENTELE_RETENTION_LEAD_YEARS", "3"))
CLIENTELE_RETENTION_INACTIVE_YEARS = int(os.getenv("CLIENTELE_RETENTION_INACTIVE_YEARS", "5"))
# Receipts are accounting records: kept under the pseudonymous id (years, shown to the customer).
CLIENTELE_RETENTION_RECEIPT_YEARS = int(os.getenv("CLIENTELE_RETENTION_RECEIPT_YEARS", "5"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Import and merge (issue 17): undo windows, batch size, and the lease of a running import
# after which the sweeper hands it to another worker (a worker beats after every batch).
CLIENTELE_IMPORT_REVERT_DAYS = int(os.getenv("CLIENTELE_IMPORT_REVERT_DAYS", "30"))
CLIENTELE_MERGE_UNDO_DAYS = int(os.getenv("CLIENTELE_MERGE_UNDO_DAYS", "30"))
CLIENTELE_IMPORT_BATCH = int(os.getenv("CLIENTELE_IMPORT_BATCH", "2000"))
CLIENTELE_IMPORT_LEASE_SECONDS = int(os.getenv("CLIENTELE_IMPORT_LEASE_SECONDS", "120"))
CLIENTELE_IMPORT_QUEUE = os.getenv("CLIENTELE_IMPORT_QUEUE", "celery")
