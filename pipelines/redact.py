"""Credentials never reach a log, a manifest, a report or a printed command line.

Two ways a secret reaches a `kobert` command: the environment (AWS_SECRET_ACCESS_KEY, HF_TOKEN, ...: read by
boto, s3fs and huggingface_hub, never by this project's code) and a URI's query or user info
(`s3://bucket/x?X-Amz-Signature=…`, `https://user:token@host/…`). A URI of an input, output or model with
a query is refused before any work (`refuse_uri_query`: fsspec's stores take their credentials from the
environment, so a query is either a mistake or a credential that would end up in the manifest). Whatever is
printed about a URI or a command line goes through `redact` first.
"""

from __future__ import annotations

import os
import re

from pipelines.errors import UserError

REDACTED = "<redacted>"
# a value this short is no credential worth the name, and redacting it would mangle ordinary words
MIN_SECRET_LENGTH = 8
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|SESSION_KEY|API_KEY|ACCESS_KEY|AUTH",
                         re.IGNORECASE)
# scheme://[user[:password]@]rest: a URI's user info and its query (up to whitespace or a quote)
USER_INFO = re.compile(r"(?P<scheme>\b[a-zA-Z][\w+.-]*://)[^/\s@'\"]+@")
# (a query is `?key=value…`: a lone `?` is a glob's one-character wildcard, as in s3://b/day-?.parquet)
QUERY = re.compile(r"(?P<uri>\b[a-zA-Z][\w+.-]*://[^\s?'\"]*)\?[^\s'\"/=]*=[^\s'\"]*")
# the only query s3fs itself reads: an object version, no secret
ALLOWED_QUERY = re.compile(r"^versionId=[\w.-]+$")


def secret_values(environ=None) -> list[str]:
    """Values of environment variables whose names say they hold a credential, longest first."""
    environ = os.environ if environ is None else environ
    values = {value for name, value in environ.items() if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str, environ=None) -> str:
    """`text` with URI queries and user info, and the values of credential-named environment variables,
    replaced by `<redacted>`."""
    text = USER_INFO.sub(lambda match: f"{match['scheme']}{REDACTED}@", text)
    text = QUERY.sub(lambda match: match[0] if ALLOWED_QUERY.match(match[0].split("?", 1)[1])
                     else f"{match['uri']}?{REDACTED}", text)
    for value in secret_values(environ):
        text = text.replace(value, REDACTED)
    return text


def refuse_uri_query(option: str, uri: str | None) -> None:
    """Refuse a URI with a query string or user info (they carry credentials) in one line that does not
    repeat them.

    Raises:
        UserError: `uri` has a query (other than s3fs's `versionId`) or user info.
    """
    if not uri or "://" not in uri:
        return
    query = QUERY.search(uri)
    if (query and not ALLOWED_QUERY.match(query[0].split("?", 1)[1])) or USER_INFO.search(uri):
        raise UserError(f"{option} {redact(uri)}: a URI with a query or user info is not supported (credentials "
                        "belong in the environment, e.g. AWS_SECRET_ACCESS_KEY, or the cluster's secret store, "
                        "never in a URI that logs and manifests record); drop that part")
