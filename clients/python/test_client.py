"""Tests of magpie_client against a running `magpie serve` (tests/cli/python_client.sh starts one).

    MAGPIE_URL=http://127.0.0.1:PORT MAGPIE_USER=user-1 MAGPIE_READ_KEY=r MAGPIE_WRITE_KEY=w \
        python3 -m unittest -v test_client

MAGPIE_USER is a user with a history in the store. The keys are those the server was started with
(--read-keys / --write-keys); without them the authentication tests are skipped.
Each test writes only ids of its own (prefix "pyt-<run>-<test>-"), so the tests do not depend on their order
and may run again against the same server.
"""

import os
import time
import unittest

from magpie_client import MagpieClient, MagpieError

URL = os.environ.get("MAGPIE_URL", "")
USER = os.environ.get("MAGPIE_USER", "")
READ_KEY = os.environ.get("MAGPIE_READ_KEY") or None
WRITE_KEY = os.environ.get("MAGPIE_WRITE_KEY") or None
RUN = "%d" % (time.time() * 1000 % 10 ** 9)


def ID(name):
    """An id unique to this run, so the tests can run again against the same server."""
    return "pyt-%s-%s" % (RUN, name)


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not URL or not USER:
            raise unittest.SkipTest("set MAGPIE_URL and MAGPIE_USER (tests/cli/python_client.sh does)")
        cls.mp = MagpieClient(URL, api_key=WRITE_KEY, timeout=10)
        cls.now = int(time.time())

    def assertApiError(self, ctx, status, code):
        e = ctx.exception
        self.assertIsInstance(e, MagpieError)
        self.assertEqual(e.status, status, repr(e))
        self.assertEqual(e.code, code, repr(e))
        self.assertTrue(e.message, "an error carries a message")

    def some_items(self, n=6):
        items = self.mp.popular(n=n)["items"]
        self.assertEqual(len(items), n)
        return items

    # ---------------------------------------------------------------- operations
    def test_health_and_ready(self):
        self.assertEqual(self.mp.health(), {"status": "ok"})
        r = self.mp.ready()
        self.assertEqual(r["status"], "ready")
        self.assertIsInstance(r["model_version"], int)
        # no key is needed for either, even when keys are configured
        anon = MagpieClient(URL)
        self.assertEqual(anon.health()["status"], "ok")
        self.assertEqual(anon.ready()["status"], "ready")

    def test_metrics(self):
        text = self.mp.metrics()
        self.assertIsInstance(text, str)
        self.assertIn("# TYPE ", text)
        self.assertRegex(text, r"(?m)^magpie_\w+(\{[^}]*\})? [0-9.eE+-]+$")

    def test_stats(self):
        s = self.mp.stats()
        for k in ("users", "items", "available_items", "events", "categories", "events_ingested",
                  "events_duplicates", "users_forgotten", "ts_min", "ts_max", "uptime_seconds"):
            self.assertIn(k, s)
            self.assertIsInstance(s[k], (int, float), k)
        self.assertGreater(s["users"], 0)
        self.assertGreater(s["events"], 0)
        self.assertLessEqual(s["available_items"], s["items"])
        self.assertEqual(sum(s["per_type"].values()), s["events"])
        self.assertIsInstance(s["event_rate"], list)
        self.assertLessEqual(len(s["event_rate"]), 120)

    def test_model(self):
        m = self.mp.model()
        self.assertTrue(m["name"])
        self.assertIsInstance(m["version"], int)
        self.assertGreater(m["items"], 0)
        self.assertIn("index", m)
        self.assertIn("meta", m)
        self.assertLessEqual(m["loaded_at"], time.time() + 5)

    def test_reload(self):
        before = self.mp.model()["version"]
        r = self.mp.reload()
        self.assertGreater(r["model"]["version"], before)
        self.assertEqual(self.mp.model()["version"], r["model"]["version"])
        self.assertGreaterEqual(self.mp.ready()["model_version"], r["model"]["version"])

    # ---------------------------------------------------------------- events and history
    def test_add_events_and_history(self):
        u = ID("events-u1")
        items = [i["item"] for i in self.some_items(3)]
        batch = [
            {"user": u, "item": items[0], "type": "view", "ts": self.now - 30},
            {"user": u, "item": items[1], "type": "purchase", "ts": self.now - 20, "value": 2},
            {"user": u, "item": items[0], "type": "view", "ts": self.now - 30},  # duplicate in the batch
        ]
        r = self.mp.add_events(batch)
        self.assertEqual(r["accepted"], 3)
        self.assertEqual(r["inserted"], 2)
        self.assertEqual(r["duplicates"], 1)
        self.assertEqual(r["new_users"], 1)
        self.assertEqual(r["new_items"], 0)
        # re-sending inserts nothing twice
        r = self.mp.add_events(batch)
        self.assertEqual(r["inserted"], 0)
        self.assertEqual(r["duplicates"], 3)
        self.assertEqual(r["new_users"], 0)
        # JSON Lines, {"events": [...]} and ts left out (now)
        r = self.mp.add_events([{"user": u, "item": items[2], "type": "cart", "ts": self.now - 10}], ndjson=True)
        self.assertEqual(r["inserted"], 1)
        r = self.mp.add_events({"events": [{"user": u, "item": items[2], "type": "fav"}]})
        self.assertEqual(r["inserted"], 1)
        h = self.mp.history(u)
        self.assertEqual(h["user"], u)
        self.assertEqual(h["total"], 4)
        self.assertEqual([e["type"] for e in h["events"]], ["fav", "cart", "purchase", "view"])  # newest first
        self.assertEqual(h["events"][2]["value"], 2)
        self.assertNotIn("value", h["events"][3])
        self.assertGreaterEqual(h["events"][0]["ts"], self.now - 5)
        self.assertEqual(len(self.mp.history(u, n=2)["events"]), 2)

    def test_add_events_invalid_writes_nothing(self):
        u = ID("invalid-u1")
        item = self.some_items(1)[0]["item"]
        batch = [
            {"user": u, "item": item, "type": "view", "ts": self.now},
            {"user": u, "item": item, "type": "teleport", "ts": self.now},
            {"user": u, "item": item, "type": "view", "ts": "yesterday"},
        ]
        with self.assertRaises(MagpieError) as ctx:
            self.mp.add_events(batch)
        self.assertApiError(ctx, 422, "unprocessable")
        self.assertEqual([e["index"] for e in ctx.exception.errors], [1, 2])
        self.assertEqual(ctx.exception.errors[1]["field"], "ts")
        self.assertIn("yesterday", ctx.exception.errors[1]["message"])
        self.assertEqual(ctx.exception.field, "type")  # the first error is the top-level one
        with self.assertRaises(MagpieError) as ctx:  # all-or-nothing: not even the valid first record
            self.mp.history(u)
        self.assertApiError(ctx, 404, "not_found")

    def test_bad_json_is_400(self):
        with self.assertRaises(MagpieError) as ctx:
            self.mp._request("POST", "/v1/events", b'[{"user": "x", ', content_type="application/json")
        self.assertApiError(ctx, 400, "bad_request")

    # ---------------------------------------------------------------- recommendations
    def test_recommend(self):
        r = self.mp.recommend(USER, n=5, explain=True)
        self.assertEqual(r["user"], USER)
        self.assertTrue(r["model"])
        self.assertIsInstance(r["model_version"], int)
        self.assertIn(r["fallback"], (True, False))
        self.assertGreater(r["history"], 0)
        self.assertEqual(len(r["items"]), 5)
        for it in r["items"]:
            self.assertTrue(it["item"])
            self.assertIsInstance(it["score"], (int, float))
            self.assertTrue(it["reason"], "explain=True gives a reason")
            self.assertIn("title", it)
            self.assertIn("category", it)
        scores = [it["score"] for it in r["items"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        seen = {e["item"] for e in self.mp.history(USER, n=1000)["events"]}
        self.assertFalse(seen & {it["item"] for it in r["items"]}, "history is never recommended")
        plain = self.mp.recommend(USER, n=5)
        self.assertTrue(all("reason" not in it or it["reason"] is None for it in plain["items"]))
        self.assertEqual([it["item"] for it in plain["items"]], [it["item"] for it in r["items"]])

    def test_recommend_paging_and_exclude(self):
        first = [it["item"] for it in self.mp.recommend(USER, n=6)["items"]]
        page2 = [it["item"] for it in self.mp.recommend(USER, n=3, offset=3)["items"]]
        self.assertEqual(page2, first[3:6])
        ex = [it["item"] for it in self.mp.recommend(USER, n=4, exclude=first[:2])["items"]]
        self.assertFalse(set(ex) & set(first[:2]))
        self.assertEqual(ex[:4], first[2:6])

    def test_recommend_category(self):
        cat = next(i["category"] for i in self.some_items(6) if i.get("category"))
        leaf = cat.split(">")[-1].strip()
        r = self.mp.recommend(USER, n=3, category=leaf)
        self.assertTrue(r["items"])
        for it in r["items"]:
            self.assertIn(leaf.lower(), (it["category"] or "").lower())

    def test_recommend_errors(self):
        with self.assertRaises(MagpieError) as ctx:
            self.mp.recommend(ID("nobody-\u00e9"), n=3)
        self.assertApiError(ctx, 404, "not_found")
        self.assertIn(ID("nobody-\u00e9"), ctx.exception.message)
        with self.assertRaises(MagpieError) as ctx:
            self.mp.recommend(USER, n=10 ** 7)
        self.assertApiError(ctx, 400, "bad_request")
        self.assertEqual(ctx.exception.field, "n")
        with self.assertRaises(MagpieError) as ctx:
            self.mp.recommend(USER, n=0)
        self.assertApiError(ctx, 400, "bad_request")
        with self.assertRaises(ValueError):
            self.mp.recommend("", n=3)

    def test_recommend_session(self):
        items = [i["item"] for i in self.some_items(3)]
        r = self.mp.recommend_session(items + [ID("no-such-sku")], n=4, explain=True)
        self.assertIsNone(r["user"])
        self.assertEqual(r["unknown_items"], 1)
        self.assertEqual(len(r["items"]), 4)
        self.assertFalse({it["item"] for it in r["items"]} & set(items), "session items are not recommended")
        self.assertTrue(all(it.get("reason") for it in r["items"]))

    def test_similar_and_popular(self):
        pop = self.mp.popular(n=5)
        self.assertIsNone(pop["category"])
        self.assertEqual(len(pop["items"]), 5)
        self.assertEqual(len(self.mp.popular(n=2, offset=1)["items"]), 2)
        self.assertEqual(self.mp.popular(n=2, offset=1)["items"][0]["item"], pop["items"][1]["item"])
        cat = pop["items"][0]["category"]
        if cat:
            pc = self.mp.popular(category=cat, n=3)
            self.assertEqual(pc["category"], cat)
            self.assertTrue(all((i["category"] or "").lower().startswith(cat.lower()) for i in pc["items"]))
        item = pop["items"][0]["item"]
        s = self.mp.similar(item, n=4)
        self.assertEqual(s["item"], item)
        self.assertEqual(len(s["items"]), 4)
        self.assertNotIn(item, [i["item"] for i in s["items"]])
        with self.assertRaises(MagpieError) as ctx:
            self.mp.similar(ID("no-such-sku"), n=3)
        self.assertApiError(ctx, 404, "not_found")

    def test_exploration_feedback_and_abtest(self):
        r = self.mp.recommend(USER, n=3, policy="egreedy:epsilon=0.5,seed=3")
        self.assertTrue(r["event_id"])
        self.assertEqual(r["policy"], "egreedy")
        self.assertTrue(all(0 < i["propensity"] <= 1 for i in r["items"]))
        item = r["items"][0]["item"]
        f = self.mp.feedback(r["event_id"], item, 1)
        self.assertEqual((f["accepted"], f["item"], f["reward"]), (True, item, 1))
        with self.assertRaises(MagpieError) as ctx:
            self.mp.feedback(r["event_id"], item, 1)
        self.assertApiError(ctx, 409, "conflict")
        with self.assertRaises(MagpieError) as ctx:
            self.mp.feedback("00000000-1", item, 1)
        self.assertApiError(ctx, 404, "not_found")
        with self.assertRaises(MagpieError) as ctx:
            self.mp.recommend(USER, policy="egreedy:eps=1")
        self.assertEqual(ctx.exception.status, 400)
        self.assertEqual(ctx.exception.field, "policy")
        # a price range
        priced = self.mp.recommend(USER, n=5, price_max=1000000)
        self.assertTrue(priced["event_id"])
        a = self.mp.abtest()
        self.assertGreaterEqual(a["variants"][0]["converted_users"], 1)
        self.assertTrue(self.mp.abtest(csv=True).startswith("variant,user,converted,value\n"))

    def test_search(self):
        title = self.some_items(1)[0]["title"]
        word = max(title.split(), key=len)
        r = self.mp.search(word, n=5)
        self.assertTrue(r["items"])
        self.assertTrue(any(word.lower() in (i["title"] or "").lower() for i in r["items"]))

    # ---------------------------------------------------------------- catalog and users
    def test_items(self):
        r = self.mp.put_items([{"id": ID("items-1"), "title": "Test Lamp", "category": ["Home", "Lighting"]},
                               {"id": ID("items-2"), "title": "Test Rug", "category": "Home > Rugs", "price": 9.5}])
        self.assertEqual(r, {"accepted": 2, "inserted": 2})
        r = self.mp.put_items({"items": [{"id": ID("items-2"), "title": "Test Rug II"}]}, method="PUT")
        self.assertEqual(r, {"accepted": 1, "inserted": 0})
        r = self.mp.put_item(ID("items-3"), {"title": "Test Vase", "category": "Home > Decor"})
        self.assertEqual(r, {"accepted": 1, "inserted": 1})
        before = self.mp.stats()["available_items"]
        self.assertEqual(self.mp.delete_item(ID("items-3")), {"item": ID("items-3"), "available": False})
        self.assertEqual(self.mp.stats()["available_items"], before - 1)
        with self.assertRaises(MagpieError) as ctx:
            self.mp.delete_item(ID("no-such-sku"))
        self.assertApiError(ctx, 404, "not_found")
        with self.assertRaises(MagpieError) as ctx:
            self.mp.put_items([{"title": "no id"}])
        self.assertIn(ctx.exception.status, (400, 422))

    def test_deleted_item_never_recommended(self):
        u = ID("delete-u1")
        items = [i["item"] for i in self.some_items(6)]
        self.mp.add_events([{"user": u, "item": items[0], "type": "purchase", "ts": self.now - 5}])
        # an item the catalog knows, recommended to this user, then deleted (it stays unavailable)
        top = self.mp.recommend(u, n=3)["items"][0]["item"]
        self.mp.delete_item(top)
        self.assertNotIn(top, [i["item"] for i in self.mp.recommend(u, n=50)["items"]])
        self.assertNotIn(top, [i["item"] for i in self.mp.popular(n=50)["items"]])
        self.assertNotIn(top, [i["item"] for i in self.mp.recommend_session([items[0]], n=50)["items"]])

    def test_users_and_forget(self):
        r = self.mp.add_users([{"id": ID("users-1"), "attrs": {"tier": "gold"}}, {"id": ID("users-2")}])
        self.assertEqual(r, {"accepted": 2, "inserted": 2})
        self.assertEqual(self.mp.add_users({"id": ID("users-1")})["inserted"], 0)
        items = [i["item"] for i in self.some_items(3)]
        self.mp.add_events([{"user": ID("users-1"), "item": it, "type": "view", "ts": self.now - 60 + k}
                            for k, it in enumerate(items)])
        forgotten = self.mp.stats()["users_forgotten"]
        self.assertEqual(self.mp.forget_user(ID("users-1")), {"user": ID("users-1"), "deleted_events": 3})
        self.assertEqual(self.mp.stats()["users_forgotten"], forgotten + 1)
        for call in (lambda: self.mp.history(ID("users-1")), lambda: self.mp.recommend(ID("users-1")),
                     lambda: self.mp.forget_user(ID("users-1"))):
            with self.assertRaises(MagpieError) as ctx:
                call()
            self.assertApiError(ctx, 404, "not_found")

    # ---------------------------------------------------------------- authentication
    def test_auth(self):
        if not READ_KEY or not WRITE_KEY:
            self.skipTest("the server has no keys (set MAGPIE_READ_KEY and MAGPIE_WRITE_KEY)")
        for key in (None, "wrong-key"):
            c = MagpieClient(URL, api_key=key)
            for call in (c.stats, lambda: c.recommend(USER), c.metrics,
                         lambda: c.add_events([{"user": ID("auth"), "item": "x", "type": "view"}])):
                with self.assertRaises(MagpieError) as ctx:
                    call()
                self.assertApiError(ctx, 401, "unauthorized")
        reader = MagpieClient(URL, api_key=READ_KEY)
        self.assertGreater(reader.stats()["users"], 0)
        self.assertEqual(len(reader.recommend(USER, n=2)["items"]), 2)
        self.assertTrue(reader.recommend_session([self.some_items(1)[0]["item"]], n=2)["items"])
        self.assertIn("# TYPE", reader.metrics())
        for call in (lambda: reader.add_events([{"user": ID("auth"), "item": "x", "type": "view"}]),
                     lambda: reader.delete_item(ID("auth-item")), lambda: reader.forget_user(USER),
                     reader.reload, lambda: reader.put_item(ID("auth-item"), {"title": "x"})):
            with self.assertRaises(MagpieError) as ctx:
                call()
            self.assertApiError(ctx, 403, "forbidden")
        self.assertEqual(self.mp.history(USER, n=1)["user"], USER)  # the forget above was refused

    def test_connection_error(self):
        c = MagpieClient("http://127.0.0.1:9", timeout=2)  # the discard port: nothing listens there
        with self.assertRaises(MagpieError) as ctx:
            c.health()
        self.assertEqual(ctx.exception.status, 0)
        self.assertEqual(ctx.exception.code, "connection")
        with self.assertRaises(ValueError):
            MagpieClient("127.0.0.1:8080")


if __name__ == "__main__":
    unittest.main(verbosity=2)
