"""An nginx configuration equivalent to the ``/api/**`` policy of config/policies.yaml.

nginx runs in the foreground as a single process (``daemon off; master_process off``),
with its pid file, error log and temp paths inside the run's work directory. It
answers preflights itself (204 allowed / 403 refused, both with ``Vary``), refuses
disallowed cross-origin actual requests with 403 (``enforce: true``), hides the
upstream's own ``Access-Control-*`` headers and stamps its own.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = r"""
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections 8192;
}}

http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 100000;
    client_max_body_size 0;

    map $http_origin $cors_origin {{
        default "";
        "http://localhost:3000" $http_origin;
        "~^https://([a-z0-9-]+\.)+example\.com$" $http_origin;
        "~^https://pr-[0-9]+\.preview\.example\.com$" $http_origin;
    }}
    map $cors_origin $cors_credentials {{
        default "true";
        "" "";
    }}
    map "$request_method|$http_access_control_request_method|$cors_origin" $cors_preflight {{
        default "";
        "~^OPTIONS\|.+\|.+$" "allow";
        "~^OPTIONS\|.+\|$" "deny";
    }}
    map "$http_origin|$cors_origin" $cors_refuse {{
        default "";
        "~^.+\|$" "refuse";
    }}

    upstream legacy {{
        server 127.0.0.1:{upstream_port};
    }}

    server {{
        listen 127.0.0.1:{port} backlog=4096;

        location /api/ {{
            if ($cors_preflight = "allow") {{
                add_header Access-Control-Allow-Origin $cors_origin always;
                add_header Access-Control-Allow-Methods "GET, POST, PUT, DELETE" always;
                add_header Access-Control-Allow-Headers
                    "Content-Type, Authorization, X-Requested-With" always;
                add_header Access-Control-Allow-Credentials "true" always;
                add_header Access-Control-Max-Age 600 always;
                add_header Vary
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
                    always;
                return 204;
            }}
            if ($cors_preflight = "deny") {{
                add_header Vary
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
                    always;
                return 403;
            }}
            if ($cors_refuse) {{
                add_header Vary Origin always;
                return 403;
            }}
            proxy_hide_header Access-Control-Allow-Origin;
            proxy_hide_header Access-Control-Allow-Credentials;
            proxy_hide_header Access-Control-Allow-Methods;
            proxy_hide_header Access-Control-Allow-Headers;
            proxy_hide_header Access-Control-Expose-Headers;
            proxy_hide_header Access-Control-Max-Age;
            add_header Access-Control-Allow-Origin $cors_origin always;
            add_header Access-Control-Allow-Credentials $cors_credentials always;
            add_header Access-Control-Expose-Headers X-Total-Count always;
            add_header Vary Origin always;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_pass http://legacy;
        }}

        location / {{
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_pass http://legacy;
        }}
    }}
}}
"""


def render(*, prefix: Path, port: int, upstream_port: int) -> str:
    """The nginx.conf text for a server on ``port`` proxying to ``upstream_port``."""
    return TEMPLATE.format(prefix=prefix, port=port, upstream_port=upstream_port)
