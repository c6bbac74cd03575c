#!/usr/bin/python3
"""Checks docs/openapi.yaml against `magpie serve` (called by tests/cli/openapi.sh; Debian's python3-yaml and
python3-jsonschema, so run it with /usr/bin/python3).

  1. The document: OpenAPI 3.1, info.version equals VERSION, unique operationIds, every $ref resolves, every
     schema is a valid JSON Schema 2020-12, every documented error answer has the Error shape.
  2. The route table: the set of (method, path) in the document equals `magpie serve --routes`; for each, the key
     level (the security scopes) and the query parameters equal the table's.
  3. A running server: every operation is sent with its documented examples (each other value of an enum query
     parameter once more) and must answer 2xx; then without a key (401), with a read key where a write key is
     needed (403), with an unknown query parameter (400), an unknown id in the path (404, where documented) and a
     malformed JSON body (400). Each answer's status must be documented for the operation and its body must
     validate against that answer's schema for its Content-Type; error codes must fit the status.

usage: openapi_check.py --spec FILE --magpie BIN --url URL --read-key K --write-key K --version V [--no-encoder]
Exit status 0 when everything holds, 1 with one line per failure otherwise."""
import argparse
import copy
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import yaml

METHODS = ("get", "put", "post", "delete", "head", "patch", "options", "trace")
STATUS_CODE = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
               413: "payload_too_large", 415: "unsupported_media_type", 422: "unprocessable", 503: "not_ready"}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def pointer(doc, ref):
    if not ref.startswith("#/"):
        raise KeyError(ref)
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(doc, node["$ref"])
    return node


def walk_refs(doc, node, where):
    if isinstance(node, dict):
        if "$ref" in node:
            try:
                pointer(doc, node["$ref"])
            except (KeyError, TypeError):
                fail(f"{where}: $ref {node['$ref']} does not resolve")
        for k, v in node.items():
            walk_refs(doc, v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_refs(doc, v, f"{where}/{i}")


def operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def route_path(path):
    return "/".join("*" if seg.startswith("{") and seg.endswith("}") else seg for seg in path.split("/"))


def op_level(op):
    sec = op.get("security", None)
    if sec is None:
        return None
    if sec == []:
        return "none"
    scopes = {tuple(scopes) for req in sec for scopes in req.values()}
    if len(scopes) != 1 or len(next(iter(scopes))) != 1:
        return "mixed:" + repr(sec)
    return next(iter(scopes))[0]


def op_params(doc, path_item, op):
    params = [deref(doc, p) for p in path_item.get("parameters", [])] + [deref(doc, p) for p in op.get("parameters", [])]
    return params


class Checker:
    def __init__(self, args, doc, raw):
        self.args, self.doc, self.raw = args, doc, raw
        self.resolver = jsonschema.RefResolver.from_schema(doc)
        self.sent = 0
        self.served = None  # (event_id, item) from a recommend answer with the exploration layer

    def validate(self, schema, value, where):
        v = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        errs = sorted(v.iter_errors(value), key=lambda e: list(e.path))
        for e in errs[:3]:
            fail(f"{where}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message[:300]}")
        return not errs

    def request(self, method, path, query=None, body=None, key=None, raw_body=None):
        url = self.args.url + urllib.parse.quote(path, safe="/")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method.upper())
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if key:
            req.add_header("X-API-Key", key)
        self.sent += 1
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

    def check_answer(self, path, method, op, status, ctype, body, where):
        """The status is documented and the body fits its schema; returns the parsed JSON body or None."""
        responses = op.get("responses", {})
        resp = responses.get(str(status)) or responses.get("default")
        if resp is None:
            fail(f"{where}: status {status} is not documented (documented: {', '.join(responses)}): {body[:200]!r}")
            return None
        resp = deref(self.doc, resp)
        content = resp.get("content")
        if method == "head":
            if body:
                fail(f"{where}: HEAD answered with a body")
            return None
        if not content:
            if body:
                fail(f"{where}: {status} has a body but no documented content")
            return None
        mtype = ctype.split(";")[0].strip().lower()
        if mtype not in content:
            fail(f"{where}: Content-Type {ctype!r} is not documented for {status} (documented: {', '.join(content)})")
            return None
        schema = content[mtype].get("schema", {})
        if mtype == "application/json":
            try:
                value = json.loads(body)
            except ValueError as e:
                fail(f"{where}: not JSON ({e}): {body[:200]!r}")
                return None
            self.validate(schema, value, f"{where} [{status}]")
            if status >= 400 and isinstance(value, dict) and isinstance(value.get("error"), dict):
                code = value["error"].get("code")
                want = STATUS_CODE.get(status)
                ok = code == want or (status == 404 and code == "model_not_found") or \
                    (status == 503 and code == "no_encoder") or (status == 500 and code in ("internal", "reload_failed"))
                if not ok:
                    fail(f"{where}: status {status} with error code {code!r}")
            return value
        text = body.decode("utf-8", "replace")
        if not text.strip():
            fail(f"{where}: an empty {mtype} body")
        if mtype == "application/yaml":
            if body != self.raw:
                fail(f"{where}: the served document differs from {self.args.spec}")
            elif yaml.safe_load(text) != self.doc:
                fail(f"{where}: the served document does not parse to the same document")
        elif mtype == "text/csv" and "," not in text.splitlines()[0]:
            fail(f"{where}: CSV without a header line")
        return None

    # --- 1. the document ---
    def check_document(self):
        d = self.doc
        if not str(d.get("openapi", "")).startswith("3.1."):
            fail(f"openapi is {d.get('openapi')!r}, not 3.1.x")
        if str(d.get("info", {}).get("version")) != self.args.version:
            fail(f"info.version {d.get('info', {}).get('version')!r} differs from VERSION {self.args.version}")
        walk_refs(d, d, "#")
        for name, schema in d.get("components", {}).get("schemas", {}).items():
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as e:
                fail(f"components/schemas/{name}: not a valid JSON Schema: {e.message}")
        ids = set()
        error_schema = {"$ref": "#/components/schemas/Error"}
        for path, method, op in operations(d):
            where = f"{method.upper()} {path}"
            oid = op.get("operationId")
            if not oid or oid in ids:
                fail(f"{where}: operationId {oid!r} missing or repeated")
            ids.add(oid)
            if op_level(op) is None:
                fail(f"{where}: no `security` (use [] for an open operation)")
            for status, resp in op.get("responses", {}).items():
                resp = deref(d, resp)
                for mtype, media in resp.get("content", {}).items():
                    try:
                        jsonschema.Draft202012Validator.check_schema(media.get("schema", {}))
                    except jsonschema.SchemaError as e:
                        fail(f"{where} {status} {mtype}: not a valid JSON Schema: {e.message}")
                    # every JSON error answer carries the error shape (OpenAI's is a superset)
                    if status.startswith(("4", "5")) and mtype == "application/json":
                        sample = {"error": {"code": "internal", "message": "m", "field": None,
                                            "type": "server_error", "param": None}}
                        shape = deref(d, media.get("schema", {}))
                        props = shape.get("properties", {}).get("error")
                        if props is None:
                            fail(f"{where} {status}: the answer is not the Error shape")
                        elif not jsonschema.Draft202012Validator(error_schema, resolver=self.resolver).is_valid(
                                {"error": {k: sample["error"][k] for k in ("code", "message", "field")}}):
                            fail("components/schemas/Error rejects a well-formed error")

    # --- 2. the route table ---
    def check_routes(self):
        out = subprocess.run([self.args.magpie, "serve", "--routes"], capture_output=True, text=True, check=True).stdout
        table = {}
        for line in out.splitlines():
            method, path, level, query = line.split(" ")
            table[(method, path)] = (level, query)
        if len(table) < 10:
            fail(f"magpie serve --routes printed too few routes: {out!r}")
        documented = {}
        for path, method, op in operations(self.doc):
            documented[(method.upper(), route_path(path))] = (path, op)
        for key in sorted(set(table) - set(documented)):
            fail(f"route {key[0]} {key[1]} (src/serve/routes.c) is not in {self.args.spec}")
        for key in sorted(set(documented) - set(table)):
            fail(f"{key[0]} {documented[key][0]} in {self.args.spec} is not a route of the server")
        for key in sorted(set(table) & set(documented)):
            level, query = table[key]
            path, op = documented[key]
            where = f"{key[0]} {path}"
            if op_level(op) != level:
                fail(f"{where}: the document asks for key level {op_level(op)!r}, the route table for {level!r}")
            params = op_params(self.doc, self.doc["paths"][path], op)
            names = {p["name"] for p in params if p.get("in") == "query"}
            want = set() if query in ("-", "any") else set(query.split(","))
            if names != want:
                fail(f"{where}: query parameters {sorted(names)} in the document, {sorted(want)} in the route table")
            for p in params:
                if p.get("in") == "path" and "{" + p["name"] + "}" not in path:
                    fail(f"{where}: path parameter {p['name']} is not in the path")
        return table

    # --- 3. the server ---
    def examples(self, path, method, op):
        params = op_params(self.doc, self.doc["paths"][path], op)
        real = path
        query = {}
        enums = []
        for p in params:
            if p.get("in") == "path":
                if "example" not in p:
                    fail(f"{method.upper()} {path}: path parameter {p['name']} has no example")
                    return None
                real = real.replace("{" + p["name"] + "}", str(p.get("example")))
            elif p.get("in") == "query":
                if "example" in p:
                    query[p["name"]] = str(p["example"])
                elif p.get("required"):
                    fail(f"{method.upper()} {path}: required query parameter {p['name']} has no example")
                schema = deref(self.doc, p.get("schema", {}))
                if "enum" in schema:
                    enums.append((p["name"], [str(v) for v in schema["enum"]]))
        body = None
        if "requestBody" in op:
            rb = deref(self.doc, op["requestBody"])
            media = rb.get("content", {}).get("application/json")
            if media is None or "example" not in media:
                fail(f"{method.upper()} {path}: the request body has no application/json example")
                return None
            body = copy.deepcopy(media["example"])
            if not self.validate(media.get("schema", {}), body, f"{method.upper()} {path}: request example"):
                return None
        return real, query, body, enums

    def key_for(self, level):
        return {"none": None, "read": self.args.read_key}.get(level, self.args.write_key)

    def exercise(self):
        ops = list(operations(self.doc))

        def order(o):  # writes, then reads (feedback after the recommendations it answers), deletes last
            path, method, op = o
            if method == "delete":
                return 3
            if path == "/v1/feedback":
                return 2
            return 0 if method in ("post", "put") and path != "/v1/recommend" else 1
        ops.sort(key=order)
        for path, method, op in ops:
            ex = self.examples(path, method, op)
            if ex is None:
                continue
            real, query, body, enums = ex
            level = op_level(op)
            key = self.key_for(level)
            where = f"{method.upper()} {path}"
            if path == "/v1/feedback" and self.served:
                body["event_id"], body["item"] = self.served
            status, ctype, data = self.request(method, real, query, body, key)
            value = self.check_answer(path, method, op, status, ctype, data, where)
            if path == "/v1/embeddings" and self.args.no_encoder:
                if status != 503 or not value or value["error"]["code"] != "no_encoder":
                    fail(f"{where}: without an encoder expected 503 no_encoder, got {status}")
            elif not 200 <= status < 300:
                fail(f"{where} with the documented examples answered {status}: {data[:300]!r}")
            if isinstance(value, dict) and value.get("event_id") and value.get("items"):
                self.served = (value["event_id"], value["items"][0]["item"])
            for name, values in enums:
                for v in values:
                    if query.get(name) == v:
                        continue
                    q = dict(query, **{name: v})
                    st, ct, da = self.request(method, real, q, body, key)
                    self.check_answer(path, method, op, st, ct, da, f"{where}?{name}={v}")
                    if not 200 <= st < 300:
                        fail(f"{where}?{name}={v} answered {st}: {da[:200]!r}")
            self.exercise_errors(path, method, op, real, query, body, level)
        if self.served is None:
            fail("no recommend answer had an event_id, so feedback was not exercised with a served list")

    def exercise_errors(self, path, method, op, real, query, body, level):
        where = f"{method.upper()} {path}"
        documented = op.get("responses", {})
        cases = []
        if level != "none":
            cases.append(("no key", 401, dict(query=query, body=body, key=None)))
        if level in ("write", "admin"):
            cases.append(("a read key", 403, dict(query=query, body=body, key=self.args.read_key)))
        key = self.key_for(level)
        if path.startswith("/v1/") and method in ("get", "delete"):
            cases.append(("an unknown query parameter", 400,
                          dict(query=dict(query, no_such_parameter="1"), body=body, key=key)))
        if "{" in path and "404" in documented and method != "put":
            cases.append(("an unknown id", 404, dict(query=query, body=body, key=key,
                                                     real=path.split("{")[0] + "no-such-id-0" +
                                                     path.split("}", 1)[1])))
        if body is not None:
            cases.append(("a malformed JSON body", 400, dict(query=query, raw_body=b'{"truncated": ', key=key)))
        for what, want, kw in cases:
            target = kw.pop("real", real)
            st, ct, da = self.request(method, target, **kw)
            self.check_answer(path, method, op, st, ct, da, f"{where} with {what}")
            if st != want:
                fail(f"{where} with {what}: expected {want}, got {st}: {da[:200]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--magpie", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--read-key", required=True)
    ap.add_argument("--write-key", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--no-encoder", action="store_true")
    args = ap.parse_args()
    raw = open(args.spec, "rb").read()
    doc = yaml.safe_load(raw)
    c = Checker(args, doc, raw)
    c.check_document()
    c.check_routes()
    c.exercise()
    n_ops = len(list(operations(doc)))
    print(f"openapi: {n_ops} operations, {c.sent} requests checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
