"""Security: no one in where they don't belong, nothing secret where it shouldn't be.

- every operation of the live server's ``/openapi.json`` is 401 without a key (or with an
  unknown one) and 403 for each role it does not allow; the ``/ui`` pages show nothing without
  a session;
- API keys are stored hashed (no table holds a key), and the event table holds no personal data
  in clear;
- the logs of the API and the projection runner, captured during a full lifecycle (with refused
  and malformed requests carrying personal data), contain no personal data, no API key and no
  database password;
- SQL is built only with parameters: statically (dynamic SQL text may only splice identifiers
  and placeholders) and at run time (hostile values never reach the SQL text);
- the sandbox clock is refused in production mode (the default).
"""

from __future__ import annotations

import ast
import hashlib
import re
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from reliability_kit import ROOT, Deployment, InProcessApi, apply_body, assert_problem, record_figures

from api.auth import ROLES

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]

# --------------------------------------------------------------------------- who may call what


def _url(path: str) -> str:
    return path.replace("{contract_id}", str(uuid.uuid4())).replace("{claim_id}", str(uuid.uuid4()))


def test_live_server_every_operation_401_without_key_403_for_other_roles(deployment: Deployment) -> None:
    deployment.mode = "production"  # the default mode
    deployment.extra_env["CONTRACTS_API_KEY_CACHE_SECONDS"] = "1"  # valid keys cached 1 s (default 5)
    keys = {role: deployment.create_key(role, f"sec-{role}") for role in ROLES}
    api = deployment.api()
    api.start_ready()
    checked = 0
    with httpx.Client(base_url=api.base, timeout=30) as http:
        document = http.get("/openapi.json").json()
        operations = [(m, p, tuple(op.get("x-roles", ()))) for p, item in document["paths"].items()
                      for m, op in item.items()]
        assert len(operations) >= 24
        for method, path, allowed in operations:
            url = _url(path)
            body = {} if method in ("post", "put") else None
            if not allowed:
                assert path in ("/healthz", "/readyz"), f"{method} {path} declares no roles"
                continue
            r = http.request(method, url, json=body)
            assert_problem(r, 401)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert_problem(http.request(method, url, json=body, headers={"X-API-Key": "ck_" + "x" * 43}), 401)
            assert_problem(http.request(method, url, json=body, headers={"Authorization": "Basic " + keys["operator"]}),
                           401)
            for role in ROLES:
                r = http.request(method, url, json=body, headers={"X-API-Key": keys[role]})
                if role in allowed:
                    assert r.status_code not in (401, 403), (method, path, role, r.text)
                else:
                    assert assert_problem(r, 403)["type"].endswith("forbidden"), (method, path, role)
            checked += 1
        # the sandbox clock is refused in production mode
        r = http.put("/v1/clock", json={"now": "2030-01-01T00:00:00Z"}, headers={"X-API-Key": keys["operator"]})
        assert assert_problem(r, 403)["type"].endswith("sandbox-only")
        clock = http.get("/v1/clock", headers={"X-API-Key": keys["billing"]}).json()
        assert clock["mode"] == "production" and clock["settable"] is False
        assert abs(time.time() - _epoch(clock["now"])) < 600  # the system clock, not a stored one
        # a key revoked by another process (the CLI) is refused once the server's cache entry
        # expires (CONTRACTS_API_KEY_CACHE_SECONDS, here 1 s), and from then on
        assert http.get("/v1/clock", headers={"X-API-Key": keys["auditor"]}).status_code == 200
        deployment.cli("keys", "revoke", "--name", "sec-auditor")
        revoked_at = time.monotonic()
        while http.get("/v1/clock", headers={"X-API-Key": keys["auditor"]}).status_code == 200:
            assert time.monotonic() - revoked_at < 1.5, "a revoked key was still accepted after the cache TTL"
            time.sleep(0.05)
        for _ in range(3):
            assert_problem(http.get("/v1/clock", headers={"X-API-Key": keys["auditor"]}), 401)
        assert http.get("/v1/clock", headers={"X-API-Key": keys["operator"]}).status_code == 200
        # the web pages (if this build has them) show nothing without a session
        pages = ("/ui", "/ui/", "/ui/contracts", f"/ui/contracts/{uuid.uuid4()}")
        ui = [http.get(p, follow_redirects=False) for p in pages]
        for r in ui:
            assert r.status_code in (303, 307, 401, 403, 404) or "login" in r.text.lower(), (r.url, r.status_code)
            assert r.status_code != 500
    record_figures("security_roles", {"operations_checked": checked, "requests": checked * (3 + len(ROLES))})


def _epoch(instant: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- secrets at rest and in logs


def test_keys_hashed_and_no_personal_data_or_secrets_in_logs(deployment: Deployment) -> None:
    tag = uuid.uuid4().hex[:10]
    password = f"pw-{tag}-S3cret"
    deployment.url = deployment.url.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")
    personal = {"name": f"Sato Hanako {tag}", "address": f"{tag} Chiyoda 1-1, Tokyo",
                "contact_name": f"Suzuki Ichiro {tag}", "contact_email": f"ichiro.{tag}@example.invalid",
                "contact_phone": f"+81-3-{tag[:4]}-{tag[4:8]}", "store_administrator": f"Tanaka Jiro {tag}"}
    renamed = {"name": f"Yamada Kaori {tag}", "contact_email": f"kaori.{tag}@example.invalid"}
    evidence = f"ticket {tag}: outage seen by Sato Hanako {tag}"
    keys = {role: deployment.create_key(role, f"log-{role}") for role in ROLES}
    wrong_key = f"ck_wrong{tag}" + "x" * 30
    runner, api = deployment.runner(), deployment.api()
    api.start_ready()  # first: it creates the tables (two processes creating them at once collide)
    runner.start()
    h = {role: {"X-API-Key": key} for role, key in keys.items()}
    with httpx.Client(base_url=api.base, timeout=30) as http:
        assert http.put("/v1/clock", json={"now": "2026-03-02T10:00:00+09:00"}, headers=h["billing"]).status_code == 200
        r = http.post("/v1/contracts", json=apply_body(f"SEC-{tag}", contractor=personal),
                      headers={**h["billing"], "Idempotency-Key": f"idem-{tag}"})
        assert r.status_code == 201, r.text
        cid = r.json()["contract_id"]
        replay = http.post("/v1/contracts", json=apply_body(f"SEC-{tag}", contractor=personal),
                           headers={**h["billing"], "Idempotency-Key": f"idem-{tag}"})
        assert replay.headers.get("idempotent-replayed") == "true"
        assert http.post(f"/v1/contracts/{cid}/approve", headers=h["billing"]).status_code == 200
        assert http.post(f"/v1/contracts/{cid}/contractor", json={"contractor": renamed},
                         headers=h["billing"]).status_code == 200
        assert http.put("/v1/clock", json={"now": "2026-04-01T10:00:00+09:00"}, headers=h["billing"]).status_code == 200
        deadline = time.monotonic() + 30
        while not (invoices := http.get(f"/v1/contracts/{cid}/invoices", headers=h["billing"]).json()["invoices"]):
            assert time.monotonic() < deadline, "the month start did not run"
            time.sleep(0.1)
        assert http.post(f"/v1/contracts/{cid}/payments", headers=h["billing"], json={
            "invoice_id": invoices[0]["invoice_id"], "amount": 1, "paid_on": "2026-04-01"}).status_code == 200
        outage = http.post("/v1/outages", headers=h["billing"], json={
            "service": "kintone", "started_at": "2026-03-10T00:00:00+09:00", "ended_at": "2026-03-12T00:00:00+09:00",
            "cause": "provider_network"}).json()["outage_id"]
        claim = http.post(f"/v1/contracts/{cid}/sla-claims", headers=h["billing"], json={
            "outage_id": outage, "proof_of_payment": True, "proof_of_breach": True, "evidence": evidence})
        assert claim.status_code in (200, 201), claim.text
        for role in ROLES:
            assert http.get(f"/v1/contracts/{cid}", headers=h[role]).status_code == 200
            assert http.get(f"/v1/contracts/{cid}/events", headers=h[role]).status_code == 200
        auditor_view = http.get(f"/v1/contracts/{cid}/events", headers=h["auditor"]).text
        assert personal["name"] not in auditor_view and evidence not in auditor_view
        assert http.get(f"/v1/contracts/{cid}/disclosure", headers=h["operator"]).status_code == 200
        # refused and malformed requests that carry personal data, and a wrong key
        assert_problem(http.post("/v1/contracts", json=apply_body(f"SEC-{tag}", contractor={**personal, "x": 1}),
                                 headers=h["billing"]), 422)
        assert_problem(http.post(f"/v1/contracts/{cid}/contractor", headers=h["billing"],
                                 json={"contractor": {"name": personal["name"] * 40}}), 422)
        assert_problem(http.post(f"/v1/contracts/{cid}/contractor", headers=h["auditor"],
                                 json={"contractor": personal}), 403)
        assert_problem(http.get(f"/v1/contracts/{cid}", headers={"X-API-Key": wrong_key}), 401)
        assert_problem(http.post(f"/v1/contracts/{cid}/terminate", headers=h["operator"],
                                 json={"article": personal["name"]}), 422)
        assert http.post(f"/v1/contracts/{cid}/termination-notice", headers=h["billing"], json={}).status_code == 200
        assert http.post(f"/v1/contracts/{cid}/terminate", headers=h["operator"],
                         json={"article": "Art. 23.1.1"}).status_code in (200, 409)
    deployment.wait_projections()
    api.stop()
    runner.stop()

    secrets = {**{f"personal {k}": v for k, v in personal.items()},
               **{f"personal new {k}": v for k, v in renamed.items()}, "evidence": evidence,
               **{f"{role} key": key for role, key in keys.items()}, "wrong key": wrong_key,
               "database password": password}
    logs = "\n".join(p.read_text(errors="replace") for p in (api.log, runner.log))
    assert "serving sandbox mode" in logs and len(logs) > 1000, "the logs were not captured"
    leaked = [what for what, value in secrets.items() if value in logs]
    assert not leaked, f"in the API/runner logs: {leaked}"
    assert "Traceback" not in logs

    with psycopg.connect(deployment.url.replace(f":{password}", ""), connect_timeout=5) as conn:
        rows = conn.execute("SELECT key_hash, role, name FROM api_keys").fetchall()
        hashes = {r[0] for r in rows}
        for key in keys.values():
            assert hashlib.sha256(key.encode()).hexdigest() in hashes
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()]
        at_rest: dict[str, str] = {}
        for table in tables:
            query = sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier("public", table))
            at_rest[table] = "\n".join(r[0] for r in conn.execute(query).fetchall())
    everything = "\n".join(at_rest.values())
    key_leaks = [role for role, key in keys.items() if key in everything or key[3:] in everything]
    assert not key_leaks, f"API keys stored in clear: {key_leaks}"
    pd_leaks = [f"{what} in {table}" for table, text in at_rest.items() for what, value in secrets.items()
                if what.startswith(("personal", "evidence"))
                and (value in text or value in _hex_decoded(text) or value.encode().hex() in text)]
    assert not pd_leaks, f"personal data in clear at rest (events, read models, API tables): {pd_leaks}"
    record_figures("security_logs", {"log_bytes": len(logs), "secrets_checked": len(secrets),
                                     "tables_scanned": len(tables), "leaks": 0})


def _hex_decoded(text: str) -> str:
    """bytea columns print as ``\\x...``: their bytes, decoded leniently."""
    return "\n".join(bytes.fromhex(m).decode("utf-8", "replace") for m in re.findall(r"\\\\x([0-9a-f]+)", text))


# --------------------------------------------------------------------------- SQL only with parameters

SQL_TEXT = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|TRUNCATE|ALTER|LOCK TABLE|WHERE|VALUES|ORDER BY|"
                      r"ON CONFLICT|JOIN|LIMIT)\b")
# Names that may be spliced into SQL text: each holds an identifier (table, column, schema prefix,
# type name), a placeholder, or a fragment built from those; never a value. A new name belongs
# here only after checking that; values travel as parameters (or psycopg.sql.Literal).
IDENTIFIER_FRAGMENTS = {
    "n", "prefix", "tracking", "table", "TABLES", "t", "ORDER", "cols", "INVOICE_COLUMNS", "c", "updates", "marks",
    "where", "order", "column", "head", "unnest", "tail", "hashes_table_name", "table_name", "h", "e",  # identifiers
    "p", "P",  # placeholders
    "u", "d", "ts", "big", "blob",  # type names of the DDL
    "sql", "statement", "rows_statement", "self",  # a statement built from the above
    "TRACKING_NAME",  # a constant of the code (the read models' tracking key)
    "SHADOW",  # a constant of the code (the name prefix of a rebuild's tables, infrastructure/read_store)
    "INVOICE_UPDATES",  # a constant of the code (the invoice upsert's SET list, from INVOICE_COLUMNS)
    "column_ddl",  # a column's type and default from the code's DOCUMENT_COLUMNS
    "join",  # ", ".join(...) of the above
}
SCANNED = ("api", "application", "domain", "infrastructure")


def _dynamic_sql() -> list[tuple[str, int, str, set[str]]]:
    """(file, line, how, names spliced) of every SQL text built with an f-string, ``%``, ``+`` or
    ``str.format`` (``psycopg.sql.SQL(...).format`` composes identifiers safely: not listed)."""
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            rel = str(path.relative_to(ROOT))
            for node in ast.walk(tree):
                parts: list[ast.expr] = []
                how = ""
                if isinstance(node, ast.JoinedStr):
                    text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
                    parts, how = [v.value for v in node.values if isinstance(v, ast.FormattedValue)], "f-string"
                elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
                    consts = [s for s in (node.left, node.right)
                              if isinstance(s, ast.Constant) and isinstance(s.value, str)]
                    text = " ".join(str(c.value) for c in consts)
                    parts = [s for s in (node.left, node.right) if s not in consts]
                    how = "%-format" if isinstance(node.op, ast.Mod) else "concatenation"
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
                      and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)):
                    text, parts, how = node.func.value.value, [*node.args, *(k.value for k in node.keywords)], "format"
                else:
                    continue
                if not SQL_TEXT.search(text):
                    continue
                names = {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name)}
                names |= {n.attr for part in parts for n in ast.walk(part) if isinstance(n, ast.Attribute)}
                found.append((rel, node.lineno, how, names))
    return found


def test_sql_text_splices_only_identifiers_and_placeholders() -> None:
    found = _dynamic_sql()
    assert found, "the scan found no dynamic SQL at all: is it still looking at the code?"
    bad = [f"{f}:{line} ({how}) splices {sorted(names - IDENTIFIER_FRAGMENTS)}" for f, line, how, names in found
           if how == "%-format" or names - IDENTIFIER_FRAGMENTS]
    assert not bad, "SQL text built from values (use parameters, or psycopg.sql.Identifier):\n" + "\n".join(bad)
    record_figures("security_sql_static", {"dynamic_sql_sites": len(found), "files_scanned": sum(
        1 for folder in SCANNED for _ in (ROOT / folder).rglob("*.py"))})


def test_hostile_values_never_reach_the_sql_text(scratch_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement sent to PostgreSQL during a lifecycle with hostile values is recorded; no
    value a client sent appears in any SQL text (they all travel as parameters)."""
    tag = uuid.uuid4().hex[:8]
    hostile = {
        "customer": f"SQLI-{tag}'); DROP TABLE api_keys;--",
        "name": f"Robert'); DELETE FROM contracts_events;-- {tag}",
        "email": f"x'{tag}\"@example.invalid",
        "evidence": f"$$ {tag} $$; SELECT pg_sleep(10); --",
        "idempotency": f"k'{tag}--\";",
        "reference": f"ref-{tag}' OR '1'='1",
    }
    statements: list[str] = []

    def recording(original: Any) -> Any:
        def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(query if isinstance(query, str | bytes) else query.as_string(self))
            return original(self, query, *args, **kwargs)
        return execute

    monkeypatch.setattr(psycopg.Cursor, "execute", recording(psycopg.Cursor.execute))
    monkeypatch.setattr(psycopg.Cursor, "executemany", recording(psycopg.Cursor.executemany))
    api = InProcessApi.start(scratch_url)
    try:
        c, h = api.client, api.headers
        r = c.post("/v1/contracts", headers={**h(), "Idempotency-Key": hostile["idempotency"]}, json=apply_body(
            hostile["customer"], reference=hostile["reference"][:64],
            contractor={"name": hostile["name"], "contact_email": hostile["email"]}))
        assert r.status_code == 201, r.text
        cid = r.json()["contract_id"]
        assert c.post(f"/v1/contracts/{cid}/approve", headers=h()).status_code == 200
        assert c.put("/v1/clock", json={"now": "2026-04-01T10:00:00+09:00"}, headers=h()).status_code == 200
        assert c.post(f"/v1/contracts/{cid}/advance", headers=h("operator")).status_code == 200
        outage = c.post("/v1/outages", headers=h(), json={
            "service": "kintone", "started_at": "2026-03-20T00:00:00+09:00", "ended_at": "2026-03-22T00:00:00+09:00",
            "cause": "provider_network"}).json()["outage_id"]
        assert c.post(f"/v1/contracts/{cid}/sla-claims", headers=h(), json={
            "outage_id": outage, "proof_of_payment": True, "proof_of_breach": True,
            "evidence": hostile["evidence"]}).status_code in (200, 201)
        assert c.get(f"/v1/contracts/{cid}", headers=h("auditor")).status_code == 200
        assert c.get("/v1/invoices", params={"month": "2026-04"}, headers=h()).status_code == 200
        assert c.get(f"/v1/contracts/{cid}", headers={"X-API-Key": f"ck_{tag}' OR '1'='1"}).status_code == 401
        api.read_models.wait_for(api.events(), timeout=10)
    finally:
        api.close()
    text = "\n".join(s.decode() if isinstance(s, bytes) else s for s in statements)
    assert len(statements) > 50 and "INSERT" in text, "the statements were not recorded"
    assert tag not in text, [s for s in statements if tag in str(s)][:3]
    record_figures("security_sql_runtime", {"statements_recorded": len(statements), "hostile_values": len(hostile)})


# --------------------------------------------------------------------------- production refuses the sandbox clock


def test_sandbox_clock_refused_in_production_mode(scratch_url: str) -> None:
    from infrastructure.settings import Settings

    assert Settings.model_fields["mode"].default == "production"
    api = InProcessApi.start(scratch_url, mode="production")
    stored = api.store.get_clock()
    try:
        for role in ("billing", "operator"):
            r = api.client.put("/v1/clock", json={"now": "2030-01-01T00:00:00Z"}, headers=api.headers(role))
            assert assert_problem(r, 403)["type"].endswith("sandbox-only")
        assert_problem(api.client.put("/v1/clock", json={"now": "2030-01-01T00:00:00Z"},
                                      headers=api.headers("auditor")), 403)
        assert api.client.get("/v1/clock", headers=api.headers()).json()["settable"] is False
        assert api.store.get_clock() == stored  # the stored (sandbox) clock was not touched
    finally:
        api.close()
