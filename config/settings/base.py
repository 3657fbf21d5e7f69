"""Environment-driven settings shared by every deployment.

Nothing secret lives here: secrets come from the environment (`local` fills in generated dev
secrets when none are set; `production` refuses to start without real ones).
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# Local state of the embedded default (SQLite, filesystem broker, cache, dev secrets, static).
VAR_DIR = Path(env.str("FLOWGATE_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "governance",
    "automations",
    "approvals",
    "channels.apps.ChannelsConfig",
    "csp",
    "axes",
]

MIDDLEWARE = [
    # First, so every later log line of the request carries its id (config/log_context.py).
    "config.log_context.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "governance.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Refuses sign-ins from a locked-out account and source (django-axes; last, as it asks).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'flowgate.sqlite3'}"),
}
# Persistent connections: a Celery worker runs many short tasks, and opening a PostgreSQL
# connection per task costs more than most tasks do. Health checks drop broken ones.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: the web process and several worker processes write one SQLite file.
    # WAL lets readers run beside the one writer; `timeout` is the busy timeout a writer waits
    # for the lock instead of failing with "database is locked"; IMMEDIATE takes the write lock
    # at BEGIN, because a deferred transaction that reads and then writes cannot wait for it
    # (SQLite answers such an upgrade with SQLITE_BUSY at once, whatever the busy timeout).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": env.float("FLOWGATE_SQLITE_BUSY_TIMEOUT_S", default=30.0),
        }
    )
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "governance.User"
AUTHENTICATION_BACKENDS = [
    # First: counts failed password sign-ins and refuses locked-out ones (every form: the
    # admin, the approval pages, the link page's password check). API tokens never pass here.
    "axes.backends.AxesStandaloneBackend",
    "governance.backends.HumanModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The approval pages' own sign-in (the admin keeps /admin/login/); chat card links land on a
# gate page, which sends a signed-out reader here and back.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/approvals/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login lockout (django-axes): after FLOWGATE_LOGIN_FAILURE_LIMIT failed sign-ins of one
# account from one source address, that account is refused from that address for
# FLOWGATE_LOGIN_LOCKOUT_S (audited, governance/login_lockout.py); a success resets the count
# and an admin unlocks by deleting the access attempt in the admin.
AXES_FAILURE_LIMIT = env.int("FLOWGATE_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("FLOWGATE_LOGIN_LOCKOUT_S", default=900))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts while locked out are refused without being counted (the lockout is not extended and
# is audited once, when it starts).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False  # governance/admin_lockout.py registers an audited unlock instead
# The source is REMOTE_ADDR only (axes' default): a header the client sets would let it pose
# as a new source on every attempt.

# django-guardian: no anonymous user row; object permissions only for real principals.
ANONYMOUS_USER_NAME = None
GUARDIAN_USER_OBJ_PERMS_MODEL = "guardian.UserObjectPermission"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Content security policy (django-csp) on every response: scripts, styles, images and form
# posts from this origin only, no inline script or style, no plugins, no framing. Every page
# works under it, the API docs too: Swagger UI is served from this site
# (drf-spectacular-sidecar) with its bootstrap script as a file; ReDoc's page alone adds
# inline styles, which its renderer inserts at run time (config/api_docs.py, REDOC_CSP).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

REDIS_URL = env.str("REDIS_URL", default="")

# Celery: Redis when configured, else kombu's filesystem transport (no server needed).
FLOWGATE_BROKER_TIMEOUT_S = env.float("FLOWGATE_BROKER_TIMEOUT_S", default=2.0)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Tasks are published from requests (after commit): a Redis that refuses, or accepts and
    # never answers, must fail the publish within seconds rather than hold the request. Without
    # these kombu retries the connection forever and redis-py waits forever on a silent socket.
    # Callers log the failure; the beat sweeps re-send what was lost.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "socket_connect_timeout": FLOWGATE_BROKER_TIMEOUT_S,
        "socket_timeout": FLOWGATE_BROKER_TIMEOUT_S,
        "max_retries": 1,  # connection attempts after the first, per publish attempt
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    _broker_dir = VAR_DIR / "broker"
    # kombu's filesystem transport needs its folders to exist before anything is enqueued,
    # including from management commands run outside ./flowgate run.
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
# The queue this deployment publishes to and its workers consume (a worker without -Q consumes
# only this one). The test suite gives every session/xdist worker its own (tests/conftest.py).
CELERY_TASK_DEFAULT_QUEUE = env.str("FLOWGATE_CELERY_QUEUE", default="flowgate")
CELERY_TASK_IGNORE_RESULT = True
# A node kind without `timeout_s` that hangs must not keep its run `running` forever: the hard
# limit kills the task, the heartbeat stops and the stale sweep pauses the run.
CELERY_TASK_TIME_LIMIT = env.int("FLOWGATE_TASK_TIME_LIMIT_S", default=3600)
# Keep worker DB connections across tasks (Django's CONN_MAX_AGE and health checks decide when
# they close, see config/celery.py); Celery still recycles them every 2 x this many tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# One more publish attempt after a broker error, then the caller gets the error (bounded with
# the broker timeouts above: a request waits at most about 4 x FLOWGATE_BROKER_TIMEOUT_S).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.authentication.BearerTokenAuthentication",
        "governance.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["governance.api.parsers.FlowgateJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "governance.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flowgate API",
    "DESCRIPTION": "Run control and human approval gates for multi-step automations.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Every /api operation documents the JSON error shape (governance/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "governance.api.schema.add_error_responses",
    ],
    # Swagger UI from this site's static files, never a CDN (no network needed).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "automations.models.RunStatus",
        "AutomationStatusEnum": "automations.models.AutomationStatus",
        "TriggerTypeEnum": "automations.models.TriggerType",
    },
}

# --- Flowgate ---------------------------------------------------------------------------
# `AUDIT_HMAC_KEYS`: "keyid:hexsecret[,keyid:hexsecret...]"; the first key signs, all verify.
AUDIT_HMAC_KEYS = env.str("AUDIT_HMAC_KEYS", default="")
FLOWGATE_HTTP_ALLOWED_HOSTS = env.list("FLOWGATE_HTTP_ALLOWED_HOSTS", default=[])
# Outbound webhooks (channels/webhooks/sending.py): one POST's timeout, the retry backoff
# (doubling from the first, capped by the max) and the attempts before a delivery fails.
FLOWGATE_WEBHOOK_TIMEOUT_S = env.float("FLOWGATE_WEBHOOK_TIMEOUT_S", default=10.0)
FLOWGATE_WEBHOOK_RETRY_BACKOFF_S = env.float("FLOWGATE_WEBHOOK_RETRY_BACKOFF_S", default=5.0)
FLOWGATE_WEBHOOK_RETRY_BACKOFF_MAX_S = env.float(
    "FLOWGATE_WEBHOOK_RETRY_BACKOFF_MAX_S", default=3600.0
)
FLOWGATE_WEBHOOK_MAX_ATTEMPTS = env.int("FLOWGATE_WEBHOOK_MAX_ATTEMPTS", default=12)
FLOWGATE_STALE_AFTER_S = env.int("FLOWGATE_STALE_AFTER_S", default=600)
FLOWGATE_SWEEP_INTERVAL_S = env.int("FLOWGATE_SWEEP_INTERVAL_S", default=30)
# Node attempts one workspace may have admitted (queued in the broker or executing) at once;
# the rest wait in the database until one of its attempts ends (automations/fairness.py).
FLOWGATE_WORKSPACE_MAX_RUNNING_NODES = env.int("FLOWGATE_WORKSPACE_MAX_RUNNING_NODES", default=8)
# Of those, how many may wait in the broker (published, not yet taken by a worker process): the
# broker then holds every busy workspace's next nodes in turn.
FLOWGATE_WORKSPACE_BROKER_BACKLOG = env.int("FLOWGATE_WORKSPACE_BROKER_BACKLOG", default=1)
# /readyz fails when the stale-run sweep (beat) has not completed for this long (config/health.py).
FLOWGATE_READY_SWEEP_MAX_AGE_S = env.int(
    "FLOWGATE_READY_SWEEP_MAX_AGE_S", default=3 * FLOWGATE_SWEEP_INTERVAL_S
)
# The bearer token /metrics asks for (config/metrics.py); unset, /metrics refuses everyone.
FLOWGATE_METRICS_TOKEN = env.str("FLOWGATE_METRICS_TOKEN", default="")
FLOWGATE_GATE_DEFAULT_EXPIRY_S = env.int("FLOWGATE_GATE_DEFAULT_EXPIRY_S", default=604800)
# How long a stored first response answers retries with the same Idempotency-Key (24 h).
FLOWGATE_IDEMPOTENCY_RETENTION_S = env.int("FLOWGATE_IDEMPOTENCY_RETENTION_S", default=86400)
# How long the workspace events (the feed, GET /api/events) and the finished outbound webhook
# deliveries are kept (30 days); beat deletes older ones, at most this many rows per transaction.
FLOWGATE_EVENT_RETENTION_S = env.int("FLOWGATE_EVENT_RETENTION_S", default=30 * 86400)
FLOWGATE_WEBHOOK_DELIVERY_RETENTION_S = env.int(
    "FLOWGATE_WEBHOOK_DELIVERY_RETENTION_S", default=30 * 86400
)
FLOWGATE_RETENTION_BATCH_SIZE = env.int("FLOWGATE_RETENTION_BATCH_SIZE", default=1000)
FLOWGATE_MAX_BODY_BYTES = env.int("FLOWGATE_MAX_BODY_BYTES", default=1048576)
# Schedules (automations.triggers.schedules): how often beat looks for due schedules, the
# closest two fire times of one schedule may be, and what a fire on a paused automation does
# ("skip": nothing, audited; "queue": it stays due and fires once when the automation resumes).
FLOWGATE_SCHEDULE_TICK_S = env.float("FLOWGATE_SCHEDULE_TICK_S", default=10.0)
FLOWGATE_SCHEDULE_MIN_INTERVAL_S = env.int("FLOWGATE_SCHEDULE_MIN_INTERVAL_S", default=60)
FLOWGATE_SCHEDULE_WHEN_PAUSED = env.str("FLOWGATE_SCHEDULE_WHEN_PAUSED", default="skip")
if FLOWGATE_SCHEDULE_WHEN_PAUSED not in ("skip", "queue"):
    raise ImproperlyConfigured("FLOWGATE_SCHEDULE_WHEN_PAUSED must be skip or queue")
# Inbound webhook triggers (POST /api/hooks/<token>): the largest body (413 above it) and the
# requests one trigger token may make (DRF rate syntax; 429 above it).
FLOWGATE_WEBHOOK_MAX_BODY_BYTES = env.int("FLOWGATE_WEBHOOK_MAX_BODY_BYTES", default=65536)
FLOWGATE_WEBHOOK_RATE = env.str("FLOWGATE_WEBHOOK_RATE", default="60/min")
# Flow size limits, checked at save before the entries they bound (automations.flow.nodes).
FLOWGATE_FLOW_MAX_NODES = env.int("FLOWGATE_FLOW_MAX_NODES", default=500)
FLOWGATE_FLOW_MAX_DEPENDENCIES = env.int("FLOWGATE_FLOW_MAX_DEPENDENCIES", default=100)
FLOWGATE_OPENAI_BASE_URL = env.str("FLOWGATE_OPENAI_BASE_URL", default="")
FLOWGATE_OPENAI_API_KEY = env.str("FLOWGATE_OPENAI_API_KEY", default="")
FLOWGATE_PUBLIC_URL = env.str("FLOWGATE_PUBLIC_URL", default="http://127.0.0.1:8000")
# Where `seed_demo` keeps the demo users' raw API tokens so that they survive restarts of
# `./flowgate run` (the database holds only their digests). Local dev state, mode 0600.
FLOWGATE_DEMO_TOKENS_FILE = Path(
    env.str("FLOWGATE_DEMO_TOKENS_FILE", default=str(VAR_DIR / "demo-tokens.json"))
)
# Chat platform API roots (tests point them at local stand-ins), the timeout of one call, and
# the backoff of card deliveries after a 5xx or network error (doubling, capped; a 429's
# Retry-After wins) before a card is marked failed.
FLOWGATE_SLACK_API_URL = env.str("FLOWGATE_SLACK_API_URL", default="https://slack.com/api/")
FLOWGATE_DISCORD_API_URL = env.str(
    "FLOWGATE_DISCORD_API_URL", default="https://discord.com/api/v10"
)
FLOWGATE_TELEGRAM_API_URL = env.str("FLOWGATE_TELEGRAM_API_URL", default="https://api.telegram.org")
FLOWGATE_CHAT_TIMEOUT_S = env.float("FLOWGATE_CHAT_TIMEOUT_S", default=10.0)
# Slack's `views.open` (the rework form) runs inside the interaction request, whose trigger id
# lapses after 3 seconds: its own short timeout keeps the request inside Slack's window.
FLOWGATE_SLACK_MODAL_TIMEOUT_S = env.float("FLOWGATE_SLACK_MODAL_TIMEOUT_S", default=2.0)
# The signing secret of the deployment's own Slack app, set by its operator and never seen by a
# workspace: Slack connections saved without a secret of their own are verified with it, and
# their clicks may decide consequential gates (docs/security.md, chat decision assurance).
FLOWGATE_SLACK_SIGNING_SECRET = env.str("FLOWGATE_SLACK_SIGNING_SECRET", default="")
# Every workspace's files (handoff dirs) live in `<this>/<org slug>/<workspace slug>/`, and an
# automation's `workspace_root` must lie inside its workspace's directory.
FLOWGATE_WORKSPACES_DIR = Path(
    env.str("FLOWGATE_WORKSPACES_DIR", default=str(VAR_DIR / "workspaces"))
)
FLOWGATE_CHAT_RETRY_BACKOFF_S = env.float("FLOWGATE_CHAT_RETRY_BACKOFF_S", default=5.0)
FLOWGATE_CHAT_RETRY_BACKOFF_MAX_S = env.float("FLOWGATE_CHAT_RETRY_BACKOFF_MAX_S", default=600.0)
FLOWGATE_CHAT_MAX_RETRIES = env.int("FLOWGATE_CHAT_MAX_RETRIES", default=12)
# Node kinds a deployment adds to the built-in agent/http/approval (automations.nodes.registry):
# "kind=dotted.path.to.execute[,kind=dotted.path]"; each path names an `execute(ctx) -> dict`.
FLOWGATE_NODE_KINDS = {
    kind.strip(): path.strip()
    for kind, path in env.dict("FLOWGATE_NODE_KINDS", default={}).items()
    if kind.strip()
}
# Bodies above the limit are refused with 413 before Django reads them; this keeps Django's
# own in-memory limit in step so a body without Content-Length cannot slip past.
DATA_UPLOAD_MAX_MEMORY_SIZE = FLOWGATE_MAX_BODY_BYTES

# Logs: one JSON object a line with the request id, workspace, run id and node id of the work
# they describe (config/log_context.py), in web processes and workers alike (config/celery.py
# makes the worker use this configuration). FLOWGATE_LOG_FORMAT=plain gives text for humans.
FLOWGATE_LOG_FORMAT = env.str("FLOWGATE_LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "config.log_context.json_formatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": FLOWGATE_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes logs every sign-in at INFO; lockouts are audited (governance/login_lockout.py).
    "loggers": {"axes": {"level": "WARNING"}},
}
# Fernet keys for secrets stored in the database (chat tokens, signing secrets).
FLOWGATE_FIELD_KEYS = env.list("FLOWGATE_FIELD_KEYS", default=[])

CELERY_BEAT_SCHEDULE = {
    # Re-verifies every audit chain and logs each chain head, so a truncated tail is detectable
    # from the logs even if the head row itself is rolled back.
    "audit-verify-all": {
        "task": "governance.tasks.audit_verify_all",
        "schedule": env.float("FLOWGATE_AUDIT_VERIFY_INTERVAL_S", default=3600.0),
        "options": {"expires": 3000},
    },
}
CELERY_BEAT_SCHEDULE["sweep-runs"] = {
    # Stale running runs are paused, queued runs nobody picked up are re-sent.
    "task": "automations.sweep_runs",
    "schedule": float(FLOWGATE_SWEEP_INTERVAL_S),
    "options": {"expires": FLOWGATE_SWEEP_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["fire-schedules"] = {
    # Due schedules start their runs (one per fire time, however many beats run this).
    "task": "automations.fire_schedules",
    "schedule": FLOWGATE_SCHEDULE_TICK_S,
    "options": {"expires": FLOWGATE_SCHEDULE_TICK_S},
}
CELERY_BEAT_SCHEDULE["sweep-gates"] = {
    # Open gates: reminders due, expiry policies (cancel / remind / escalate) applied.
    "task": "approvals.sweep_gates",
    "schedule": float(FLOWGATE_SWEEP_INTERVAL_S),
    "options": {"expires": FLOWGATE_SWEEP_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["expire-delegations"] = {
    # Delegations of review authority whose period is over: their end is audited.
    "task": "approvals.expire_delegations",
    "schedule": float(FLOWGATE_SWEEP_INTERVAL_S),
    "options": {"expires": FLOWGATE_SWEEP_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["sync-overdue-cards"] = {
    # Chat cards whose delivery task was lost (broker down, worker killed) are sent again.
    "task": "channels.sync_overdue_cards",
    "schedule": float(FLOWGATE_SWEEP_INTERVAL_S),
    "options": {"expires": FLOWGATE_SWEEP_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["stamp-events"] = {
    # Domain events whose after-commit stamp was lost get their feed positions.
    "task": "governance.stamp_events",
    "schedule": float(FLOWGATE_SWEEP_INTERVAL_S),
    "options": {"expires": FLOWGATE_SWEEP_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["sweep-webhooks"] = {
    # Webhook endpoints whose drain message was lost (broker down, worker killed) drain again.
    "task": "channels.sweep_webhooks",
    "schedule": float(FLOWGATE_SWEEP_INTERVAL_S),
    "options": {"expires": FLOWGATE_SWEEP_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["forget-idempotency-records"] = {
    # Stored first responses of Idempotency-Key requests past FLOWGATE_IDEMPOTENCY_RETENTION_S.
    "task": "governance.forget_idempotency_records",
    "schedule": 3600.0,
    "options": {"expires": 3000},
}
CELERY_BEAT_SCHEDULE["forget-events"] = {
    # Workspace events past FLOWGATE_EVENT_RETENTION_S (not those a webhook delivery still has).
    "task": "governance.forget_events",
    "schedule": 3600.0,
    "options": {"expires": 3000},
}
CELERY_BEAT_SCHEDULE["forget-webhook-deliveries"] = {
    # Finished webhook deliveries past FLOWGATE_WEBHOOK_DELIVERY_RETENTION_S, with their attempts.
    "task": "channels.forget_webhook_deliveries",
    "schedule": 3600.0,
    "options": {"expires": 3000},
}
CELERY_BEAT_SCHEDULE["forget-interaction-receipts"] = {
    # Chat delivery receipts older than any platform redelivers or accepts a replay are deleted.
    "task": "channels.forget_receipts",
    "schedule": 3600.0,
    "options": {"expires": 3000},
}
