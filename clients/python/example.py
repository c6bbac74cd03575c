#!/usr/bin/env python3
"""Posts a few events for a shopper, then prints that shopper's recommendations with the reason for each.

    python3 example.py http://127.0.0.1:8080 [API_KEY]
"""
import sys

from magpie_client import MagpieClient, MagpieError


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    mp = MagpieClient(sys.argv[1], api_key=sys.argv[2] if len(sys.argv) > 2 else None)
    try:
        popular = [it["item"] for it in mp.popular(n=3)["items"]]
        if not popular:
            print("the catalog is empty: import items and events first", file=sys.stderr)
            return 1
        user = "example-shopper"
        r = mp.add_events([
            {"user": user, "item": popular[0], "type": "view"},
            {"user": user, "item": popular[0], "type": "cart"},
            {"user": user, "item": popular[-1], "type": "purchase", "value": 1},
        ])
        print("events: %(accepted)d accepted, %(inserted)d new, %(duplicates)d duplicates" % r)
        recs = mp.recommend(user, n=5, explain=True)
        print("recommendations for %s (model %s v%d%s):" % (
            user, recs["model"], recs["model_version"], ", popularity fallback" if recs["fallback"] else ""))
        for rank, it in enumerate(recs["items"], 1):
            print("%2d. %-12s %-40s %.4f  %s" % (rank, it["item"], (it.get("title") or "")[:40], it["score"],
                                                 it.get("reason") or ""))
    except MagpieError as e:
        print("magpie: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
