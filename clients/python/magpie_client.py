"""Python client for the HTTP API of `magpie serve` (docs/api.md). Standard library only.

    from magpie_client import MagpieClient, MagpieError

    mp = MagpieClient("http://127.0.0.1:8080", api_key="secret")
    mp.add_events([{"user": "u1", "item": "sku-9", "type": "purchase"}])
    for rec in mp.recommend("u1", n=5, explain=True)["items"]:
        print(rec["item"], rec["score"], rec["reason"])

Every method returns the decoded JSON answer (a dict) except metrics(), which returns the Prometheus text. Any
answer other than 2xx raises MagpieError(status, code, message, field); so does a server that cannot be reached
(status 0, code "connection") or an answer that is not JSON (code "bad_response").
"""

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["MagpieClient", "MagpieError"]
__version__ = "1.0"


class MagpieError(Exception):
    """An error answer of the server, as documented in docs/api.md:

    status  -- HTTP status (0 when no answer came: connection refused, timeout)
    code    -- "bad_request", "unauthorized", "forbidden", "not_found", "unprocessable", "not_ready", ...
    message -- the server's message (what, where, why)
    field   -- the field to blame, or None
    errors  -- for 422 on writes: every invalid record, [{"index": 2, "message": "...", "field": "ts"}, ...]
    """

    def __init__(self, status, code, message, field=None, errors=None):
        super().__init__("%s %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.errors = errors or []

    def __repr__(self):
        return "MagpieError(%r, %r, %r, field=%r)" % (self.status, self.code, self.message, self.field)


def _segment(value, what):
    """One path segment, percent-encoded (every byte outside unreserved characters, '/' included)."""
    if not isinstance(value, str) or not value:
        raise ValueError("%s must be a non-empty string, got %r" % (what, value))
    return urllib.parse.quote(value, safe="")


def _query(**params):
    """A query string of the parameters that are not None; booleans as 1/0, lists as comma-joined text."""
    pairs = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "1" if v else "0"
        elif isinstance(v, (list, tuple)):
            if not v:
                continue
            v = ",".join(str(x) for x in v)
        pairs.append((k, str(v)))
    return "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote) if pairs else ""


def _records(value, key):
    """A list of records from a list, a tuple, a generator or a single dict (sent as a one-element list)."""
    if isinstance(value, dict):
        if key in value and isinstance(value[key], list):
            return value[key]
        return [value]
    return list(value)


class MagpieClient:
    """A client of one server. Thread-safe: it holds no connection state (one HTTP request per call)."""

    def __init__(self, base_url, api_key=None, timeout=10):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://, got %r" % base_url)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    # ------------------------------------------------------------------ transport
    def _request(self, method, path, body=None, content_type="application/json", text=False, auth=True):
        headers = {"Accept": "application/json", "User-Agent": "magpie-client-python/" + __version__}
        if self.api_key and auth:
            headers["Authorization"] = "Bearer " + self.api_key
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            raise self._error(e.code, raw, method, path) from None
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise MagpieError(0, "connection", "%s %s%s: %s" % (method, self.base_url, path, reason)) from None
        if text:
            return raw.decode("utf-8", errors="replace")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise MagpieError(status, "bad_response",
                              "%s %s: the answer is not JSON: %r" % (method, path, raw[:200])) from None

    @staticmethod
    def _error(status, raw, method, path):
        try:
            doc = json.loads(raw.decode("utf-8"))
            err = doc["error"]
            return MagpieError(status, err.get("code") or "error", err.get("message") or "",
                               err.get("field"), doc.get("errors"))
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            text = raw.decode("utf-8", errors="replace").strip()[:300]
            return MagpieError(status, "http_%d" % status, "%s %s: %s" % (method, path, text or "no message"))

    # ------------------------------------------------------------------ writes (write key)
    def add_events(self, events, ndjson=False):
        """POST /v1/events: a list of event dicts (user, item, type; ts, value, text, session optional).
        All-or-nothing: an invalid record raises MagpieError(422) with .errors listing every bad record.
        Returns {"accepted", "inserted", "duplicates", "new_users", "new_items"}. ndjson=True sends JSON Lines."""
        evs = _records(events, "events")
        if ndjson:
            body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in evs).encode("utf-8")
            return self._request("POST", "/v1/events", body, content_type="application/x-ndjson")
        return self._request("POST", "/v1/events", evs)

    def put_items(self, items, method="POST"):
        """POST (or PUT) /v1/items: insert or replace items. Returns {"accepted", "inserted"}."""
        if method not in ("POST", "PUT"):
            raise ValueError("method must be POST or PUT")
        return self._request(method, "/v1/items", _records(items, "items"))

    def put_item(self, item_id, item=None):
        """PUT /v1/items/{id}: insert or replace one item (its "id" may be left out of `item`)."""
        return self._request("PUT", "/v1/items/" + _segment(item_id, "item_id"), dict(item or {}))

    def delete_item(self, item_id):
        """DELETE /v1/items/{id}: marks the item unavailable. Returns {"item", "available": False}."""
        return self._request("DELETE", "/v1/items/" + _segment(item_id, "item_id"))

    def add_users(self, users):
        """POST /v1/users: a list of {"id", "attrs"} (or one dict). Returns {"accepted", "inserted"}."""
        return self._request("POST", "/v1/users", _records(users, "users"))

    def forget_user(self, user_id):
        """DELETE /v1/users/{id}: removes every event, the attributes and the model state of the user.
        Returns {"user", "deleted_events"}; unknown id: MagpieError(404)."""
        return self._request("DELETE", "/v1/users/" + _segment(user_id, "user_id"))

    def reload(self):
        """POST /v1/admin/reload: reloads the model file now. Returns {"model": {...}}."""
        return self._request("POST", "/v1/admin/reload", {})

    # ------------------------------------------------------------------ reads (read key)
    def recommend(self, user, n=None, offset=None, category=None, exclude=None, explain=False, q=None, policy=None,
                  price_min=None, price_max=None):
        """GET /v1/recommend/{user}. Returns {"user", "model", "model_version", "fallback", "history", "items":
        [{"item", "title", "category", "score", "reason" (with explain)}]}; unknown user: MagpieError(404).
        q: interests text; policy: an exploration policy spec for this request ("egreedy:epsilon=0.1"); price_min /
        price_max: a price range. With exploration the answer also has "event_id", "variant", "policy" and each
        item's "propensity" (pass event_id and the item to feedback())."""
        qs = _query(n=n, offset=offset, category=category, exclude=exclude, explain=True if explain else None, q=q,
                    policy=policy, price_min=price_min, price_max=price_max)
        return self._request("GET", "/v1/recommend/" + _segment(user, "user") + qs)

    def recommend_session(self, items, n=None, offset=None, category=None, exclude=None, explain=False, q=None,
                          policy=None, price_min=None, price_max=None):
        """POST /v1/recommend: recommendations for an anonymous session (item ids, oldest first). The answer is
        as for recommend() with "user": None and "unknown_items" (ids the catalog does not know)."""
        body = {"items": list(items), "explain": bool(explain)}
        for k, v in (("n", n), ("offset", offset), ("category", category), ("q", q), ("policy", policy),
                     ("price_min", price_min), ("price_max", price_max)):
            if v is not None:
                body[k] = v
        if exclude:
            body["exclude"] = list(exclude)
        return self._request("POST", "/v1/recommend", body)

    def search(self, q, user=None, n=None, offset=None, category=None):
        """GET /v1/search: items matching the text q (BM25 + embeddings), re-ranked for user when given. Returns
        {"q", "items": [{"item", "title", "category", "score", "reason"}], ...}."""
        return self._request("GET", "/v1/search" + _query(q=q, user=user, n=n, offset=offset, category=category))

    def feedback(self, event_id, item, reward):
        """POST /v1/feedback: the reward (1 click, 0 none, any number) for an item of a list served with an
        event_id. Returns {"accepted": True, "event_id", "item", "reward", "variant"}; unknown or expired event:
        MagpieError(404); an item that was not shown: 422; feedback given twice: 409."""
        return self._request("POST", "/v1/feedback", {"event_id": event_id, "item": item, "reward": reward})

    def abtest(self, csv=False):
        """GET /v1/abtest: per-variant users, converted users, purchases and the comparisons with the first
        variant; csv=True: the per-user rows (a str) that `magpie abtest --csv` reads."""
        if csv:
            return self._request("GET", "/v1/abtest?format=csv", text=True)
        return self._request("GET", "/v1/abtest")

    def similar(self, item, n=None):
        """GET /v1/similar/{item}. Returns {"item", "items": [...]}; unknown item: MagpieError(404)."""
        return self._request("GET", "/v1/similar/" + _segment(item, "item") + _query(n=n))

    def popular(self, category=None, n=None, offset=None):
        """GET /v1/popular. Returns {"category", "items": [...]}."""
        return self._request("GET", "/v1/popular" + _query(category=category, n=n, offset=offset))

    def history(self, user, n=None):
        """GET /v1/users/{id}/history. Returns {"user", "total", "events": [{"item", "type", "ts", "value"?}]},
        newest first; unknown user: MagpieError(404)."""
        return self._request("GET", "/v1/users/" + _segment(user, "user") + "/history" + _query(n=n))

    def stats(self):
        """GET /v1/stats: catalog and event counts, ingestion counters, uptime and the event rate."""
        return self._request("GET", "/v1/stats")

    def model(self):
        """GET /v1/model: name, version, file, checksum, loaded_at, index and the training meta (metrics)."""
        return self._request("GET", "/v1/model")

    # ------------------------------------------------------------------ operations
    def health(self):
        """GET /healthz (no key needed): {"status": "ok"} while the process runs."""
        return self._request("GET", "/healthz", auth=False)

    def ready(self):
        """GET /readyz (no key needed): {"status": "ready", "model_version": n}; MagpieError(503) before."""
        return self._request("GET", "/readyz", auth=False)

    def metrics(self):
        """GET /metrics: the Prometheus text exposition (a str)."""
        return self._request("GET", "/metrics", text=True)
